"""Adaptive pair selection in a study: strides fitted from the votes in the background,
served by the real scheduler, with the balanced design's guarantees kept."""

from collections import Counter
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache

from analysis import selection
from analysis import tasks as analysis_tasks
from analysis.simulated import add_simulated_votes
from studies.models import Assignment, AssignmentKind, Comparison, Study
from tests.factories import answer_pairs, make_judging_rater, make_live_study

pytestmark = pytest.mark.django_db
# Two systems far apart and two neck and neck: the close pair's order is what is uncertain.
STRENGTHS = {"top": 3.0, "mid-a": 0.0, "mid-b": 0.15, "low": -3.0}


def _study(**overrides: Any) -> Study:
    study = make_live_study(
        systems=4, prompts=6, attention_check_rate=0, practice_comparisons=0,
        comparisons_per_session=12, votes_per_comparison=50, **overrides,
    )  # fmt: skip
    for system, name in zip(study.systems.order_by("pk"), STRENGTHS, strict=True):
        system.name = name
        system.save(update_fields=["name"])
    return study


def _simulate(study: Study, raters: int, seed: int) -> None:
    add_simulated_votes(
        study=study, strengths=STRENGTHS, n_raters=raters, careless_share=0.0, noise=0.0,
        item_sd=0.0, seed=seed,
    )  # fmt: skip


def _pair_votes(study: Study, after: int = 0) -> Counter[frozenset[str]]:
    rows = Assignment.objects.filter(
        study=study, kind=AssignmentKind.COMPARISON, pk__gt=after, votes__is_current=True
    ).values_list("left_asset__system__name", "right_asset__system__name")
    return Counter(frozenset(pair) for pair in rows)


def _strides(study: Study) -> dict[frozenset[str], set[float]]:
    out: dict[frozenset[str], set[float]] = {}
    rows = Comparison.objects.filter(study=study).values_list(
        "system_a__name", "system_b__name", "stride"
    )
    for a, b, stride in rows:
        out.setdefault(frozenset((a, b)), set()).add(stride)
    return out


def test_the_uncertain_pair_gets_the_votes_and_the_guarantees_hold() -> None:
    study = _study(pair_selection="adaptive")
    _simulate(study, raters=6, seed=1)  # the floor: every pair voted on, strides all 1
    refreshed = selection.refresh_strides(study=study)
    assert (refreshed.criteria, refreshed.pairs, refreshed.comparisons) == (1, 6, 36)
    strides = _strides(study)
    assert all(len(values) == 1 for values in strides.values())  # one stride per pair
    close, far = frozenset(("mid-a", "mid-b")), frozenset(("top", "low"))
    # The settled pair, whose every vote went one way, is not among the planned next
    # votes: at the cap, it is served a twentieth as often as the most urgent pair.
    assert strides[far] == {1 / selection.MIN_WEIGHT}
    assert min(min(values) for values in strides.values()) == 1.0
    before = Assignment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for stage in range(4):  # as the background task would: a refresh every few votes
        _simulate(study, raters=2, seed=10 + stage)
        selection.refresh_strides(study=study)
    votes = _pair_votes(study, after=before)
    # The settled pair gets well under its even share (a rater who has had every favoured
    # comparison, or whom the variety rules keep off their prompts, still takes it), the
    # uncertain one more (the shape criterion also favours pairs across the scale).
    assert votes[far] < 0.75 * sum(votes.values()) / len(strides), votes
    assert votes[close] > votes[far], votes
    # The guarantees of the balanced design: no rater saw a comparison twice; each
    # comparison's sides within one of each other; the favoured pair's prompts in turn.
    served = Assignment.objects.filter(study=study, kind=AssignmentKind.COMPARISON)
    per_rater = Counter(served.values_list("rater_id", "comparison_id"))
    assert max(per_rater.values()) == 1
    for comparison in Comparison.objects.filter(study=study):
        assert abs(comparison.shown_a_left - comparison.shown_b_left) <= 1
    loads = [
        c.shown_a_left + c.shown_b_left
        for c in Comparison.objects.filter(
            study=study, system_a__name__in=close, system_b__name__in=close
        )
    ]
    assert max(loads) - min(loads) <= 1, loads


def test_a_balanced_study_keeps_every_stride_at_one_and_spreads_votes_evenly() -> None:
    study = _study()
    _simulate(study, raters=12, seed=3)
    assert set(Comparison.objects.filter(study=study).values_list("stride", flat=True)) == {1.0}
    votes = _pair_votes(study)
    assert max(votes.values()) - min(votes.values()) <= 6  # 6 prompts: a round each


def test_pairs_below_the_floor_come_first_and_no_pair_starves() -> None:
    study = _study(pair_selection="adaptive")
    selection.refresh_strides(study=study)  # no votes at all: every pair below the floor
    assert set(Comparison.objects.filter(study=study).values_list("stride", flat=True)) == {
        selection.FLOOR_STRIDE
    }
    _simulate(study, raters=6, seed=4)
    selection.refresh_strides(study=study)
    values = np.array(list(Comparison.objects.filter(study=study).values_list("stride", flat=True)))
    assert np.isfinite(values).all() and values.max() <= 1 / selection.MIN_WEIGHT


def test_votes_schedule_one_refresh_per_window_for_adaptive_studies_only(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[dict[str, int]] = []
    cache.clear()
    monkeypatch.setattr(
        analysis_tasks.refresh_selection,
        "apply_async",
        lambda kwargs, countdown: sent.append(kwargs),
    )
    adaptive, balanced = _study(pair_selection="adaptive"), _study()
    for study in (adaptive, balanced):
        with django_capture_on_commit_callbacks(execute=True):
            answer_pairs(make_judging_rater(study), limit=4)
    assert sent == [{"study_id": adaptive.pk}]  # debounced: one for four votes
    analysis_tasks.refresh_selection(**sent[0])
    assert Comparison.objects.filter(study=adaptive).exclude(stride=1.0).exists()
