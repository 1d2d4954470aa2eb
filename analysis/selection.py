"""Adaptive pair selection, the Django side: from the votes so far, each comparison's stride.

The vote path does no model fitting. After votes commit, a background task (debounced:
one per ``VERDICT_SELECTION_DEBOUNCE`` seconds per study) fits the current votes and asks
``analysis.core.selection.pair_priorities`` which pairs of systems a vote helps most; each
pair's comparisons get a stride, and the scheduler's pick orders by (load + 1) × stride
(studies.scheduler), so a pair is served in proportion to 1 / stride: the pairs of the
core's planned batch of next votes mostly, the others rarely. Every prompt of a
pair shares its stride: within a pair the prompts are still served in turn, so a pair's
votes are not concentrated on a few prompts. A pair below the floor of votes is served
before any other.
"""

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from analysis.core.counts import count_pairs
from analysis.core.selection import PairPriorities, pair_priorities
from analysis.loaders import study_votes
from studies import scheduler
from studies.debounce import first_in_window
from studies.models import PairSelection, Study

# Votes every pair gets before the model has a say (the selection core's floor).
FLOOR = 2
# The least share of a pair's rows relative to the most urgent pair: no pair starves.
MIN_WEIGHT = 0.05
FLOOR_STRIDE = 0.25
# Votes planned per refresh: about what a study collects between two refreshes.
BATCH = 10


@dataclass(frozen=True)
class SelectionRefresh:
    criteria: int
    pairs: int
    comparisons: int
    notices: tuple[str, ...]


def strides(result: PairPriorities) -> np.ndarray:
    """A stride per pair of ``result``: pairs below the floor first (FLOOR_STRIDE); then the
    pairs of the planned batch (the next votes as the core would serve them, each chosen
    as if the ones before it were voted on) in proportion to how often the batch names
    them, the most often at 1; every other pair at 1 / MIN_WEIGHT, so that none starves.
    Serving the batch, not every pair in proportion to its priority, is what
    bench/selection.py measures (about a third fewer votes there than proportional)."""
    planned = np.bincount(result.batch, minlength=result.n_pairs).astype(float)
    weight = planned / planned.max() if planned.max() > 0 else np.ones(result.n_pairs)
    out = 1.0 / np.clip(weight, MIN_WEIGHT, 1.0)
    return np.where(result.below_floor, FLOOR_STRIDE, out)


@transaction.atomic
def refresh_strides(*, study: Study) -> SelectionRefresh:
    """Fit the study's current votes per criterion (with all criteria on one screen, the
    first criterion, which the pick goes by) and set every comparison's stride."""
    loaded = study_votes(study=study)
    table = loaded.table
    system_ids = list(study.systems.order_by("pk").values_list("pk", flat=True))
    criteria = list(study.criteria.order_by("order", "pk"))
    if study.criteria_on_one_screen:
        criteria = criteria[:1]
    label = table.labels.get("criterion")
    pairs = changed = 0
    notices: list[str] = []
    for criterion in criteria:
        if label is not None and criterion.key in label.values:
            votes = table.select(label.codes == label.values.index(criterion.key))
        else:
            votes = table.select(np.zeros(table.n_votes, dtype=bool))
        counts = count_pairs(
            votes.first, votes.second, votes.outcome, n_systems=len(system_ids), ordered=False
        )
        result = pair_priorities(counts, floor=FLOOR, batch=BATCH)
        notices += [f"{criterion.key}: {notice.message}" for notice in result.notices]
        rows = [
            (system_ids[int(i)], system_ids[int(j)], float(stride))
            for i, j, stride in zip(result.first, result.second, strides(result), strict=True)
        ]
        # The comparison's own order of its pair: system a has the lower id.
        rows = [(min(a, b), max(a, b), stride) for a, b, stride in rows]
        pairs += len(rows)
        changed += scheduler.set_strides(study=study, criterion_id=criterion.pk, strides=rows)
    return SelectionRefresh(len(criteria), pairs, changed, tuple(notices))


def schedule_refresh(*, study_id: int) -> None:
    """After new votes of an adaptive study: one stride refresh per debounce window."""
    from analysis import tasks

    debounce = settings.VERDICT_SELECTION_DEBOUNCE
    if not first_in_window(f"verdict:selection:{study_id}", debounce):
        return
    adaptive = Study.objects.filter(pk=study_id, pair_selection=PairSelection.ADAPTIVE)
    if adaptive.exists():
        tasks.refresh_selection.apply_async(kwargs={"study_id": study_id}, countdown=debounce)
