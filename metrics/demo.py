"""The demo study's metrics: a reference set of "real" pictures (the synthetic renderer's
undegraded scenes at seeds no system used), per-asset measures and set metrics with the
weight-free extractor."""

import io

from generation.backends.synthetic import render_scene
from metrics import imports
from metrics.models import ReferenceSet
from studies.models import Study

DEMO_REFERENCE = "clean renders"
# Seeds far from the systems' own (0, 1, …): the reference shares the prompts' content,
# never their exact pictures.
FIRST_SEED = 10_000
PER_PROMPT = 4


def seed_demo_reference(study: Study, *, size: tuple[int, int] = (512, 512)) -> ReferenceSet:
    """The demo's reference set, rendered once (PER_PROMPT pictures per prompt)."""
    reference_set, _ = ReferenceSet.objects.get_or_create(
        study=study,
        name=DEMO_REFERENCE,
        defaults={"description": "Undegraded synthetic renders of the study's prompts."},
    )
    if reference_set.images.exists():
        return reference_set

    def renders() -> list[tuple[str, bytes]]:
        out = []
        for prompt in study.prompts.order_by("pk"):
            for k in range(PER_PROMPT):
                image, _, _ = render_scene(prompt.text, FIRST_SEED + k, size, drop_one=False)
                buffer = io.BytesIO()
                image.save(buffer, "PNG")
                out.append((f"prompt-{prompt.pk}-{k}.png", buffer.getvalue()))
        return out

    imports.add_reference_images(reference_set=reference_set, files=renders())
    return reference_set
