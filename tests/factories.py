"""Builders for test data: plain functions, keyword overrides, no fixed primary keys."""

import io
import itertools
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from studies.models import (
    Asset,
    AssetKind,
    Assignment,
    Comparison,
    Criterion,
    Prompt,
    Rater,
    Study,
    System,
    Vote,
    new_public_id,
)

_counter = itertools.count(1)


def png_bytes(
    size: tuple[int, int] = (16, 16), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def make_study(**overrides: Any) -> Study:
    n = next(_counter)
    fields: dict[str, Any] = {"name": f"Study {n}", "slug": f"study-{n}"}
    fields.update(overrides)
    return Study.objects.create(**fields)


def make_system(study: Study | None = None, **overrides: Any) -> System:
    n = next(_counter)
    fields: dict[str, Any] = {
        "name": f"system-{n}",
        "backend": "synthetic",
        "backend_params": {"width": 64, "height": 64},
    }
    fields.update(overrides)
    return System.objects.create(study=study or make_study(), **fields)


def make_prompt(study: Study | None = None, **overrides: Any) -> Prompt:
    n = next(_counter)
    fields: dict[str, Any] = {"text": f"a red circle number {n}", "category": "objects"}
    fields.update(overrides)
    return Prompt.objects.create(study=study or make_study(), **fields)


def make_criterion(study: Study | None = None, **overrides: Any) -> Criterion:
    n = next(_counter)
    fields: dict[str, Any] = {
        "key": f"criterion-{n}",
        "question": "Which image is better?",
        "copy_is_known_worse": True,
    }
    fields.update(overrides)
    return Criterion.objects.create(study=study or make_study(), **fields)


def make_asset(system: System, prompt: Prompt, **overrides: Any) -> Asset:
    public_id = new_public_id()
    data = overrides.pop("data", None) or png_bytes()
    name = default_storage.save(f"a/{public_id}.png", ContentFile(data))
    fields: dict[str, Any] = {
        "seed": 0,
        "kind": AssetKind.OUTPUT,
        "public_id": public_id,
        "file": name,
        "media_type": "image/png",
        "width": 16,
        "height": 16,
        "byte_size": len(data),
        "sha256": "0" * 64,
    }
    fields.update(overrides)
    return Asset.objects.create(system=system, prompt=prompt, **fields)


def make_ready_study(
    *, systems: int = 3, prompts: int = 2, criteria: int = 1, **overrides: Any
) -> Study:
    """A study with an output (and an attention copy) for every (system, prompt)."""
    overrides.setdefault("status", "ready")
    study = make_study(**overrides)
    made_systems = [make_system(study) for _ in range(systems)]
    made_prompts = [make_prompt(study) for _ in range(prompts)]
    for i in range(criteria):
        make_criterion(study, order=i)
    for system in made_systems:
        for prompt in made_prompts:
            asset = make_asset(system, prompt)
            make_asset(system, prompt, kind=AssetKind.ATTENTION, source=asset)
    return study


def make_realness_study(
    *, systems: int = 2, prompts: int = 3, real_images: int = 6, **overrides: Any
) -> Study:
    """A ready real-or-generated study: an output (and an attention copy) for every
    (system, prompt), and a real image set of ``real_images`` images over the prompts."""
    overrides.setdefault("status", "ready")
    overrides.setdefault("study_type", "realness")
    study = make_study(**overrides)
    made_systems = [make_system(study) for _ in range(systems)]
    made_prompts = [make_prompt(study) for _ in range(prompts)]
    make_criterion(study, key="realness", question="Is this image real or generated?")
    for system in made_systems:
        for prompt in made_prompts:
            asset = make_asset(system, prompt)
            make_asset(system, prompt, kind=AssetKind.ATTENTION, source=asset)
    real = make_system(study, name="Real photographs", is_real=True, backend="import")
    for k in range(real_images):
        make_asset(real, made_prompts[k % prompts], seed=k // prompts)
    return study


def make_rater(study: Study, **overrides: Any) -> Rater:
    return Rater.objects.create(study=study, **overrides)


def make_assignment(rater: Rater, **overrides: Any) -> Assignment:
    study = rater.study
    if "left_asset" not in overrides:
        outputs = list(Asset.objects.outputs().filter(system__study=study).order_by("pk"))
        left = outputs[0]
        right = next(
            a for a in outputs if a.prompt_id == left.prompt_id and a.system_id != left.system_id
        )
        overrides.update(left_asset=left, right_asset=right, prompt=left.prompt)
    overrides.setdefault("criterion", study.criteria.first())
    return Assignment.objects.create(study=study, rater=rater, **overrides)


def make_vote(assignment: Assignment, **overrides: Any) -> Vote:
    fields: dict[str, Any] = {"answer": "left", "response_ms": 1500, "client_id": uuid.uuid4()}
    fields.update(overrides)
    return Vote.objects.create(assignment=assignment, **fields)


def make_live_study(**overrides: Any) -> Study:
    """A launched study (comparisons built), from make_ready_study's arguments."""
    from studies.lifecycle import launch_study

    study = make_ready_study(**overrides)
    return launch_study(study=study)


def make_judging_rater(study: Study, **overrides: Any) -> Rater:
    """A rater past consent and instructions."""
    from django.utils import timezone

    now = timezone.now()
    return make_rater(study, consented_at=now, instructions_done_at=now, **overrides)


def _answer_for(pair: Assignment, answer: str | Callable[[Assignment], str] | None) -> str:
    if callable(answer):
        return answer(pair)
    return answer or pair.expected_answer or "left"


def wrong_on_checks(pair: Assignment) -> str:
    """Fail every known-answer pair; answer the others "left"."""
    if not pair.expected_answer:
        return "left"
    return "right" if pair.expected_answer in ("left", "tie") else "left"


def answer_pairs(
    rater: Rater, *, answer: str | Callable[[Assignment], str] | None = None, limit: int = 10_000
) -> int:
    """Answer the rater's pairs until the session ends (known answers correctly unless an
    answer is forced); returns how many were answered."""
    from studies.assignments import session_state
    from studies.votes import record_vote

    answered = 0
    while answered < limit:
        state = session_state(rater=rater)
        if not state.screens:
            break
        record_vote(
            rater=rater,
            answers=[(pair.token, _answer_for(pair, answer)) for pair in state.screens[0]],
            response_ms=900,
            client_id=uuid.uuid4(),
        )
        rater.refresh_from_db()
        answered += 1
    return answered


def start_rater(client: Any, study: Study, params: dict[str, str] | None = None) -> Rater:
    """Enter (open link, or Prolific ids in ``params``), consent and read the instructions."""
    client.get(f"/r/{study.slug}/", params or {})
    client.post(f"/r/{study.slug}/consent", {"decision": "agree"})
    client.post(f"/r/{study.slug}/instructions")
    return Rater.objects.order_by("-pk")[0]


def rater_api(client: Any, study: Study, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (no body) or POST JSON to the rater API."""
    url = f"/api/r/{study.slug}/{path}"
    if body is None:
        return client.get(url)
    return client.post(url, json.dumps(body), content_type="application/json")


def tally(comparison: Comparison) -> tuple[int, int]:
    """(pairs answered, pairs open) of a comparison, counted from its assignments."""
    rows = Assignment.objects.filter(comparison=comparison)
    return rows.filter(status="answered").count(), rows.filter(status="served").count()


def make_reported_study() -> Study:
    """A live study with simulated votes, a generation log with costs, a priced API
    system, prompts in two groups, a metric that disagrees with people, and its stored
    report (first criterion, simulated raters included)."""
    from analysis.reports import ReportOptions, build_report
    from analysis.simulated import add_simulated_votes
    from metrics.imports import import_metric_csv

    study = make_live_study(systems=3, prompts=6, criteria=1, comparisons_per_session=12)
    systems = list(study.systems.order_by("pk"))
    names = [s.name for s in systems]
    for k, system in enumerate(systems):
        for j, asset in enumerate(Asset.objects.outputs().filter(system=system)):
            gpu = 2.0 * (3 - k) + 0.1 * j
            asset.generation_meta = {"seconds": gpu + 0.5, "gpu_seconds": gpu, "attempt": 1}
            if k == 2:  # an API model: its latency only, and a price
                asset.generation_meta = {"seconds": 1.0 + 0.1 * j}
            asset.save(update_fields=["generation_meta"])
    systems[2].price_per_image = Decimal("0.00200")
    systems[2].save(update_fields=["price_per_image"])
    for k, prompt in enumerate(Prompt.objects.filter(study=study).order_by("pk")):
        prompt.attributes = {"group": "first" if k % 2 else "second"}
        prompt.save(update_fields=["attributes"])
    add_simulated_votes(
        study=study, strengths={names[0]: 1.2, names[1]: 0.0, names[2]: -1.2}, n_raters=10, seed=3
    )
    # People rank names[0] first; this metric (higher is better) ranks it last.
    rows = "".join(f"{n},made-up,{v},false\n" for n, v in zip(names, (0.1, 0.5, 0.9), strict=True))
    header = "system,metric,value,lower_is_better\n"
    import_metric_csv(study=study, data=(header + rows).encode(), name="m.csv")
    build_report(study=study, options=ReportOptions(criterion=study.criteria.first().key))  # type: ignore[union-attr]
    return study
