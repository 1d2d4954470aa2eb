"""What a served pair shows, cached per process: a prompt's media by system and seed, the
study's criteria and its known-answer material.

Entries are keyed by the study's content version, which every change to media, prompts,
criteria or known pairs bumps. The version is read with the rater's row in the vote's
transaction, so a cached entry is never stale, and serving a pair needs no query for what
it shows: the vote path stays at a fixed number of statements.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import F

from studies.models import Asset, AssetKind, Criterion, KnownPair, Prompt, Study

T = TypeVar("T")
# Prompts of busy studies: a few thousand entries of a few assets each.
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Known:
    """A pair with a known better side for one criterion."""

    criterion: Criterion
    prompt: Prompt
    better: Asset
    worse: Asset
    explanation: str


@dataclass(frozen=True)
class StudyContent:
    criteria: list[Criterion]  # in the order raters see them
    prompt_count: int
    known: dict[int, list[Known]]  # criterion pk -> material, known pairs first
    assets: dict[int, Asset]  # pk -> the media of that material

    @property
    def primary(self) -> Criterion:
        return self.criteria[0]

    def criterion(self, pk: int) -> Criterion:
        return next(c for c in self.criteria if c.pk == pk)


@dataclass(frozen=True)
class PromptMedia:
    prompt: Prompt
    outputs: dict[int, dict[int, Asset]]  # system pk -> seed -> output (not withheld)
    assets: dict[int, Asset]  # pk -> every medium of the prompt (copies, withheld ones too)

    def pairs(self, system_a: int, system_b: int) -> list[tuple[Asset, Asset]]:
        """The seeds both systems have, in seed order, as (a's output, b's output)."""
        a, b = self.outputs.get(system_a, {}), self.outputs.get(system_b, {})
        return [(a[seed], b[seed]) for seed in sorted(a.keys() & b.keys())]


_entries: "OrderedDict[tuple[Any, ...], Any]" = OrderedDict()
_lock = threading.Lock()


def _cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]  # type: ignore[no-any-return]
    value = load()
    with _lock:
        _entries[key] = value
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()


def bump(study_id: int) -> None:
    """Invalidate every cached entry of the study (in every process)."""
    Study.objects.filter(pk=study_id).update(content_version=F("content_version") + 1)


def _version(study: Study) -> tuple[Any, ...]:
    # The creation time too: a deleted study's pk may be reused by a new one (SQLite).
    return (study.pk, study.created_at, study.content_version)


def _load_study(study: Study) -> StudyContent:
    criteria = list(study.criteria.order_by("order", "pk"))
    known: dict[int, list[Known]] = {c.pk: [] for c in criteria}
    pairs = KnownPair.objects.filter(study=study, better__withheld=False, worse__withheld=False)
    for pair in pairs.select_related("criterion", "prompt", "better", "worse").order_by("pk"):
        known[pair.criterion_id].append(
            Known(pair.criterion, pair.prompt, pair.better, pair.worse, pair.explanation)
        )
    copies = list(
        Asset.objects.filter(system__study=study, kind=AssetKind.ATTENTION, withheld=False)
        .filter(source__withheld=False)
        .select_related("source", "prompt")
        .order_by("pk")
    )
    for criterion in criteria:
        if not criterion.copy_is_known_worse:
            continue
        for copy in copies:
            assert copy.source is not None  # a database constraint: copies have a source
            if copy.media_type.startswith("video/"):
                damage = "frozen on its first frame, or covered in blocks of noise and blur"
                explanation = (
                    f"Asked “{criterion.question}”, the better answer is the intact video: "
                    f"the other one is a damaged copy of it, {damage}."
                )
            else:
                explanation = (
                    f"Asked “{criterion.question}”, the better answer is the intact image: "
                    "the other one is a damaged copy of it, with blocks of noise and blur."
                )
            known[criterion.pk].append(
                Known(criterion, copy.prompt, copy.source, copy, explanation)
            )
    assets = {
        asset.pk: asset
        for material in known.values()
        for entry in material
        for asset in (entry.better, entry.worse)
    }
    return StudyContent(
        criteria=criteria, prompt_count=study.prompts.count(), known=known, assets=assets
    )


def study_content(study: Study) -> StudyContent:
    return _cached(("study", *_version(study)), lambda: _load_study(study))


def _load_prompt(study: Study, prompt_id: int) -> PromptMedia:
    outputs: dict[int, dict[int, Asset]] = {}
    # One read: the prompt comes joined to its media (a prompt without any, rarely).
    media = list(
        Asset.objects.filter(prompt_id=prompt_id, system__study=study)
        .select_related("prompt")
        .defer("generation_meta")
    )
    prompt = media[0].prompt if media else Prompt.objects.get(pk=prompt_id)
    assets = {}
    for asset in media:
        asset.prompt = prompt
        assets[asset.pk] = asset
        if asset.kind == AssetKind.OUTPUT and not asset.withheld:
            outputs.setdefault(asset.system_id, {})[asset.seed] = asset
    return PromptMedia(prompt=prompt, outputs=outputs, assets=assets)


def prompt_media(study: Study, prompt_id: int) -> PromptMedia:
    key = ("prompt", *_version(study), prompt_id)
    return _cached(key, lambda: _load_prompt(study, prompt_id))


@dataclass(frozen=True)
class ImagePool:
    """A real-or-generated study's images: the outputs raters may see (the real set's
    and the systems', not withheld) and the damaged copies of the systems' outputs that
    serve as attention checks."""

    images: tuple[Asset, ...]
    copies: tuple[Asset, ...]


def _load_pool(study: Study) -> ImagePool:
    shown = (
        Asset.objects.filter(system__study=study, withheld=False)
        .select_related("prompt", "system")
        .defer("generation_meta")
        .order_by("pk")
    )
    images = tuple(shown.filter(kind=AssetKind.OUTPUT))
    copies = tuple(
        shown.filter(kind=AssetKind.ATTENTION, system__is_real=False, source__withheld=False)
    )
    return ImagePool(images=images, copies=copies)


def image_pool(study: Study) -> ImagePool:
    """The study's image pool, cached like the rest of its content: serving an image
    reads no media."""
    return _cached(("pool", *_version(study)), lambda: _load_pool(study))


def study_of(instance: Asset | Prompt | Criterion | KnownPair) -> int | None:
    """The study an edited row belongs to, for the signal that bumps its version."""
    if isinstance(instance, Asset):
        return (
            Study.objects.filter(systems__pk=instance.system_id)
            .values_list("pk", flat=True)
            .first()
        )
    return instance.study_id
