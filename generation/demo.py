"""The demo study: synthetic systems with a known quality order, ready to generate."""

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from generation import jobs
from generation.models import GenerationJob
from studies import content
from studies.models import Asset, Criterion, KnownPair, Prompt, Study, StudyStatus, System

DEMO_SLUG = "demo-shapes"
VIDEO_DEMO_SLUG = "demo-clips"
DEMO_ADMIN = "admin"

# Best first: each system degrades the same pictures more than the one above it. The
# simulated costs give the readiness view a trade-off: the better, the dearer and slower;
# Off-prompt stands for an API model with a hand-entered price.
DEMO_SYSTEMS = [
    (
        "Pristine",
        "Rank 1 of 4: no degradation.",
        {"simulated_gpu_seconds": 6.0, "simulated_memory_mb": 22_000},
        None,
    ),
    (
        "Soft focus",
        "Rank 2 of 4: blur and JPEG artefacts.",
        {
            "blur": 2.0,
            "jpeg_quality": 40,
            "simulated_gpu_seconds": 2.2,
            "simulated_memory_mb": 12_000,
        },
        None,
    ),
    (
        "Grainy",
        "Rank 3 of 4: noise, a third of the resolution, drops an element of 20% of prompts.",
        {
            "noise": 28,
            "resolution": 0.35,
            "prompt_mismatch": 0.2,
            "simulated_gpu_seconds": 0.7,
            "simulated_memory_mb": 6_000,
        },
        None,
    ),
    # Sharp and clean but wrong: low-level measures rank it high, people low (the demo's
    # disagreement by construction).
    (
        "Off-prompt",
        "Rank 4 of 4: sharp and clean, but drops an element of most prompts.",
        {"prompt_mismatch": 0.8, "simulated_seconds": 3.0},
        "0.00400",
    ),
]
# The group comparison's attribute: the palette the prompt's first colour belongs to.
WARM = ("red", "yellow", "orange", "pink", "brown")
COOL = ("blue", "green", "purple", "white", "grey", "snowy")
DEMO_PROMPTS = {
    "objects": [
        "a red circle on a white background",
        "a blue square next to a yellow triangle",
        "a green tree beside a brown house",
        "a purple star above a pink heart",
    ],
    "scenes": [
        "a yellow sun over the ocean at sunset",
        "three white clouds in a blue sky above a grass field",
        "a snowy mountain at night under a moon",
        "a pink flower in a meadow with an orange sun",
    ],
    "counting": [
        "two red balls and one blue box",
        "five yellow stars on a dark background",
        "four green triangles in a desert",
        "three pink flowers and a grey cloud",
    ],
}
# (key, question, whether a corrupted copy is a known worse answer to it)
DEMO_CRITERIA = [
    ("alignment", "Which image matches the prompt better?", False),
    ("quality", "Which image looks better: sharper, cleaner, more natural?", True),
]
REFERENCE_SYSTEM = "Pristine"
DEMO_CONSENT = """\
This is a **demonstration study** of Verdict. You will compare pairs of generated images.

- It takes about five minutes.
- We record your answers and response times, nothing else about you.
- You may stop at any time.
"""
DEMO_INSTRUCTIONS = """\
Each page shows a **prompt** and **two images** made from it, and asks one question.

- Choose the image that answers the question better: **1** or **←** for the left image,
  **2** or **→** for the right one.
- If they are equally good, choose **Tie** (**0**); if neither is acceptable, **Both bad** (**9**).
- Click an image, or press **E**, to see it larger.
"""


# The video demo: short synthetic clips (two seconds at 12 fps), best first. Each system
# damages the same moving scene in a way only motion shows, or more of it.
VIDEO_SIZE = {"width": 192, "height": 128, "frames": 24, "fps": 12}
VIDEO_DEMO_SYSTEMS = [
    ("Steady", "Rank 1 of 4: no degradation.", {}),
    ("Stutter", "Rank 2 of 4: a quarter of the frames dropped, uneven motion.", {
        "dropped_frames": 0.25, "judder": 0.5,
    }),
    ("Flicker", "Rank 3 of 4: brightness flicker and mild blur.", {"flicker": 0.35, "blur": 1.5}),
    ("Smear", "Rank 4 of 4: heavy blur, noise and dropped frames.", {
        "blur": 3.5, "noise": 25, "dropped_frames": 0.4,
    }),
]  # fmt: skip
VIDEO_DEMO_PROMPTS = [
    "a red circle on a white background",
    "a blue square next to a yellow triangle",
    "a yellow sun over the ocean at sunset",
    "two red balls and one blue box",
    "a purple star above a pink heart",
    "a snowy mountain at night under a moon",
]
VIDEO_DEMO_CONSENT = DEMO_CONSENT.replace("generated images", "short generated videos")
VIDEO_DEMO_INSTRUCTIONS = """\
Each page shows a **prompt** and **two short videos** made from it, playing together.

- Watch both; the answers open once both have played through (they keep looping).
- Choose the video that looks better: **1** or **←** for the left, **2** or **→** for the
  right; **Tie** (**0**) if they are equally good, **Both bad** (**9**) if neither is.
- **Space** pauses and plays both, **R** starts both again, **E** makes them larger.
"""


@dataclass(frozen=True)
class DemoSeed:
    study: Study
    created: bool
    job: GenerationJob | None


@dataclass(frozen=True)
class DemoAdmin:
    username: str
    password: str
    created: bool


def ensure_demo_admin() -> DemoAdmin:
    """A superuser for the demo; the password is kept in var/ so it can be printed again."""
    secret_file = Path(settings.VAR_DIR) / "demo-admin-password.txt"
    users = get_user_model()._default_manager
    user = users.filter(username=DEMO_ADMIN).first()
    if user is not None and secret_file.exists():
        return DemoAdmin(DEMO_ADMIN, secret_file.read_text().strip(), created=False)
    password = secrets.token_urlsafe(9)
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    if user is None:
        users.create_superuser(DEMO_ADMIN, "admin@localhost", password)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    return DemoAdmin(DEMO_ADMIN, password, created=True)


def _palette(text: str) -> dict[str, str]:
    colours = [w for w in text.split() if w in WARM or w in COOL]
    return {"palette": "warm" if colours[0] in WARM else "cool"} if colours else {}


def _seeded(study: Study, *, created: bool, generate: bool) -> DemoSeed:
    """Queue generation of whatever media the demo study still lacks (before launch)."""
    job = None
    wants_media = study.status in {StudyStatus.DRAFT, StudyStatus.READY}
    if generate and wants_media and jobs.plan_missing(study=study):
        job = jobs.start_generation(study=study)
    return DemoSeed(study=study, created=created, job=job)


def demo_study() -> Study | None:
    return Study.objects.filter(slug=DEMO_SLUG).first()


@transaction.atomic
def seed_demo_study(*, generate: bool = True) -> DemoSeed:
    """Create the demo study once; queue generation of whatever media it still lacks."""
    study, created = Study.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Demo: synthetic shapes",
            "consent": DEMO_CONSENT,
            "instructions": DEMO_INSTRUCTIONS,
            "comparisons_per_session": 12,
            "votes_per_comparison": 3,
            "attention_check_rate": 0.1,
        },
    )
    if created:
        System.objects.bulk_create(
            [
                System(
                    study=study,
                    name=name,
                    description=text,
                    backend="synthetic",
                    backend_params=params,
                    price_per_image=price,
                )
                for name, text, params, price in DEMO_SYSTEMS
            ]
        )
        Prompt.objects.bulk_create(
            [
                Prompt(study=study, text=text, category=category, attributes=_palette(text))
                for category, texts in DEMO_PROMPTS.items()
                for text in texts
            ]
        )
        Criterion.objects.bulk_create(
            [
                Criterion(
                    study=study, key=key, question=question, order=i, copy_is_known_worse=worse
                )
                for i, (key, question, worse) in enumerate(DEMO_CRITERIA)
            ]
        )
    return _seeded(study, created=created, generate=generate)


def video_demo_study() -> Study | None:
    return Study.objects.filter(slug=VIDEO_DEMO_SLUG).first()


@transaction.atomic
def seed_video_demo_study(*, generate: bool = True) -> DemoSeed:
    """Create the video demo study once; queue generation of whatever clips it lacks."""
    study, created = Study.objects.get_or_create(
        slug=VIDEO_DEMO_SLUG,
        defaults={
            "name": "Demo: synthetic clips",
            "modality": "video",
            "consent": VIDEO_DEMO_CONSENT,
            "instructions": VIDEO_DEMO_INSTRUCTIONS,
            "comparisons_per_session": 8,
            "votes_per_comparison": 3,
            "attention_check_rate": 0.1,
        },
    )
    if created:
        System.objects.bulk_create(
            System(
                study=study,
                name=name,
                description=text,
                backend="synthetic",
                backend_params={**VIDEO_SIZE, **params},
            )
            for name, text, params in VIDEO_DEMO_SYSTEMS
        )
        Prompt.objects.bulk_create(Prompt(study=study, text=text) for text in VIDEO_DEMO_PROMPTS)
        Criterion.objects.create(
            study=study,
            key="quality",
            question="Which video looks better: smoother, sharper, steadier?",
            copy_is_known_worse=True,
        )
    return _seeded(study, created=created, generate=generate)


REALNESS_DEMO_SLUG = "demo-real"
# Clean renders stand in for real photographs (no photographs ship with the demo); in a
# real study they are uploaded to the real set as an import.
REALNESS_DEMO_REAL = ("Clean renders", "Stands in for real photographs: no degradation.")
REALNESS_DEMO_SYSTEMS = [
    (name, text, {k: v for k, v in params.items() if not k.startswith("simulated")})
    for name, text, params, _price in DEMO_SYSTEMS[1:]
]
REALNESS_DEMO_CONSENT = DEMO_CONSENT
REALNESS_DEMO_INSTRUCTIONS = """\
You will see one picture at a time, for one second. Some are clean renders of simple
shapes (here they stand in for real photographs); the others were made by image
generators that blur, grain or change them. Say whether each one is **real** (a clean
render) or **generated**. Some pictures are deliberately damaged with blocks of noise:
those count as generated.
"""


def realness_demo_study() -> Study | None:
    return Study.objects.filter(slug=REALNESS_DEMO_SLUG).first()


@transaction.atomic
def seed_realness_demo_study(*, generate: bool = True) -> DemoSeed:
    """Create the real-or-generated demo study once; queue whatever media it lacks."""
    study, created = Study.objects.get_or_create(
        slug=REALNESS_DEMO_SLUG,
        defaults={
            "name": "Demo: real or generated",
            "study_type": "realness",
            "consent": REALNESS_DEMO_CONSENT,
            "instructions": REALNESS_DEMO_INSTRUCTIONS,
            "seeds_per_prompt": 2,
            "comparisons_per_session": 16,
            "real_share": 0.5,
            "exposure_ms": 1000,
            "attention_check_rate": 0.1,
            "practice_comparisons": 2,
        },
    )
    if created:
        name, text = REALNESS_DEMO_REAL
        System.objects.create(
            study=study, name=name, description=text, backend="synthetic", is_real=True
        )
        System.objects.bulk_create(
            System(study=study, name=n, description=t, backend="synthetic", backend_params=p)
            for n, t, p in REALNESS_DEMO_SYSTEMS
        )
        texts = [text for texts in DEMO_PROMPTS.values() for text in texts][:8]
        Prompt.objects.bulk_create(Prompt(study=study, text=text) for text in texts)
        Criterion.objects.create(
            study=study, key="realness", question="Is this picture real or generated?"
        )
    return _seeded(study, created=created, generate=generate)


def add_known_pairs(study: Study, *, criterion_key: str = "alignment", limit: int = 12) -> int:
    """Practice-grade material for prompt match, from the synthetic backend's own record:
    an output that dropped an element the prompt names against the reference system's
    output of the same prompt and seed, which has it. Returns how many were added."""
    criterion = study.criteria.get(key=criterion_key)
    if KnownPair.objects.filter(criterion=criterion).exists():
        return 0
    outputs = Asset.objects.outputs().filter(system__study=study)
    reference = {(a.prompt_id, a.seed): a for a in outputs.filter(system__name=REFERENCE_SYSTEM)}
    dropping = outputs.exclude(system__name=REFERENCE_SYSTEM).filter(
        generation_meta__dropped_element__isnull=False
    )
    added = []
    for worse in dropping.select_related("prompt").order_by("prompt_id", "seed", "pk"):
        better = reference.get((worse.prompt_id, worse.seed))
        word = worse.generation_meta.get("dropped_element")
        if better is None or not word:
            continue
        added.append(
            KnownPair(
                study=study,
                criterion=criterion,
                prompt=worse.prompt,
                better=better,
                worse=worse,
                explanation=(
                    f"Asked “{criterion.question}”, the better answer is the image that shows "
                    f"everything the prompt names. The other one leaves out the {word} that "
                    f"“{worse.prompt.text}” asks for; sharpness does not matter for this question."
                ),
            )
        )
        if len(added) == limit:
            break
    KnownPair.objects.bulk_create(added)
    content.bump(study.pk)
    return len(added)
