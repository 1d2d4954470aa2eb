"""Which image a rater sees next in a real-or-generated study. It only picks;
studies.assignments serves what it picks, as for pairwise studies.

The pool is the study's real images (the system marked ``is_real``) and the systems'
outputs, withheld media left out. Each rater's session mixes them at the study's
``real_share`` exactly: the positions of the real images are drawn per rater, so the
order cannot be learnt. A generated image comes from the system with the fewest
judgments so far, then its least-judged output, so every system is judged about equally
often; a real image is the least-judged one. Never an image the rater has already seen,
and not the prompt of the rater's last image when another is left. Attention checks are
damaged copies of outputs (their honest answer: generated; the instructions say so).
Practice images come from the same pool, half real, with their truth shown after.

Concurrency: the counts are read without locks, so two raters served at the same
moment may take the same least-judged image; the balance is then off by one, never a
repeat for a rater (that is the rater's own row, locked by the vote's transaction).
"""

import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from django.db.models import Count, Q

from studies.models import (
    Answer,
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    Study,
)
from studies.scheduler import COUNTED, SessionPlan


@dataclass(frozen=True)
class Pick:
    asset: Asset
    truth: str  # Answer.REAL or Answer.GENERATED


def real_positions(*, plan: SessionPlan, real_share: float, seed: str) -> frozenset[int]:
    """The main-block positions (attention checks excluded) that show a real image:
    ``round(real_share × trials)`` of them, placed at random per rater."""
    trials = [p for p in range(plan.main) if p not in plan.checks]
    count = round(real_share * len(trials))
    return frozenset(random.Random(f"real:{seed}").sample(trials, count))


def _pool(study: Study) -> list[Asset]:
    return list(
        Asset.objects.outputs()
        .filter(system__study=study, withheld=False)
        .select_related("prompt", "system")
        .order_by("pk")
    )


def _judged(study: Study) -> Counter[int]:
    """Judgments served or answered so far, per image."""
    rows = (
        Assignment.objects.filter(study=study, kind=AssignmentKind.JUDGMENT, status__in=COUNTED)
        .values("left_asset_id")
        .annotate(n=Count("pk"))
        .values_list("left_asset_id", "n")
    )
    return Counter(dict(rows))


def _truth(asset: Asset) -> str:
    return Answer.REAL if asset.system.is_real else Answer.GENERATED


def _least(
    assets: Sequence[Asset], counts: Counter[int], key_of: dict[int, int], rng: random.Random
) -> Asset:
    """The asset whose system (``key_of``: generated images' systems) has the fewest
    judgments, then the asset with the fewest; ties broken at random. Real images have
    no system group: only their own counts order them."""
    group: Counter[int] = Counter()
    for asset_id, n in counts.items():
        if asset_id in key_of:
            group[key_of[asset_id]] += n
    return min(assets, key=lambda a: (group[a.system_id], counts[a.pk], rng.random()))


def pick_trial(
    *,
    study: Study,
    real: bool,
    seen: Collection[int],
    last_prompt: int | None,
    rng: random.Random,
) -> Pick | None:
    """The next main image: real or generated as the rater's positions say (the other
    kind when that one is used up for this rater); None when the rater has seen all."""
    everything = _pool(study)
    pool = [a for a in everything if a.pk not in seen]
    wanted = [a for a in pool if a.system.is_real == real] or pool
    if not wanted:
        return None
    fresh = [a for a in wanted if a.prompt_id != last_prompt] or wanted
    # Generated images: balance the systems first, then their outputs.
    system_of = {a.pk: a.system_id for a in everything if not a.system.is_real}
    chosen = _least(fresh, _judged(study), system_of, rng)
    return Pick(chosen, _truth(chosen))


def pick_practice(*, study: Study, position: int, seen: Collection[int], seed: str) -> Pick | None:
    """A practice image: real and generated in turn (which first, drawn per rater)."""
    rng = random.Random(f"practice:{seed}:{position}")
    real = (position + random.Random(f"practice:{seed}").randrange(2)) % 2 == 0
    pool = [a for a in _pool(study) if a.pk not in seen]
    wanted = [a for a in pool if a.system.is_real == real] or pool
    if not wanted:
        return None
    chosen = rng.choice(wanted)
    return Pick(chosen, _truth(chosen))


def pick_check(*, study: Study, seen: Collection[int], rng: random.Random) -> Pick | None:
    """An attention check: a damaged copy of an output, not seen before."""
    copies = list(
        Asset.objects.filter(
            system__study=study, kind=AssetKind.ATTENTION, withheld=False, system__is_real=False
        )
        .filter(Q(source__isnull=True) | Q(source__withheld=False))
        .exclude(pk__in=list(seen))
        .select_related("prompt", "system")
        .order_by("pk")
    )
    if not copies:
        return None
    return Pick(rng.choice(copies), Answer.GENERATED)


def launch_problems(*, study: Study) -> list[str]:
    """What a real-or-generated study needs beyond any study's basics."""
    problems = []
    real = study.systems.filter(is_real=True).first()
    if real is None:
        problems.append(
            "it has no real images: add a system marked “real images” and upload them as an import"
        )
    elif not Asset.objects.outputs().filter(system=real).exists():
        problems.append(f"its real image set {real.name!r} has no images yet")
    if not study.systems.filter(is_real=False).exists():
        problems.append("it has no system whose images are set against the real ones")
    if study.modality != "image":
        problems.append("real-or-generated studies show images; its modality is not image")
    return problems
