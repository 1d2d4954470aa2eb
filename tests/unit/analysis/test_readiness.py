"""The readiness view's arithmetic: operations, Pareto front, robustness, group gaps and
the decision, on inputs small enough to check by hand (and Newcombe's interval against
statsmodels)."""

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from analysis.core.readiness import (
    P95_MIN_OUTPUTS,
    GenerationRecord,
    credit_first,
    decide,
    group_gaps,
    newcombe_difference,
    operations,
    pareto_front,
    robustness,
)
from analysis.core.results import BreakdownGroup, SystemRow
from analysis.core.types import Outcome


def make_row(system: str, *, elo: float) -> SystemRow:
    return SystemRow(
        system=system, component=0, rank=1, rank_low=1, rank_high=2, score=0.0,
        score_low=-1.0, score_high=1.0, elo=elo, elo_low=elo - 50, elo_high=elo + 50, se=0.1,
        votes=40, wins=20, losses=15, ties=5, both_bad=0, win_rate=0.5, both_bad_rate=0.0,
        both_bad_low=0.0, both_bad_high=0.1, preliminary=False, flags=(),
    )  # fmt: skip


def _record(**overrides: object) -> GenerationRecord:
    fields: dict[str, object] = {
        "system": "a",
        "seconds": [1.0, 2.0, 3.0, 4.0],
        "gpu_seconds": [0.5, 1.5, None, 2.0],
        "peak_memory_mb": [100.0, None, 300.0, 200.0],
        "media_seconds": [None, None, None, None],
        "items": 5,
        "failed": 1,
        "retried": 2,
    }
    fields.update(overrides)
    return GenerationRecord(**fields)  # type: ignore[arg-type]


def test_operations_summarise_the_log_and_cost_gpu_seconds_at_the_hour_price() -> None:
    ops = operations(_record(), gpu_hour_price=3.6)
    assert ops.outputs == 4
    assert ops.seconds_per_image == 2.5
    assert ops.gpu_seconds_per_image == pytest.approx(4.0 / 3)  # the three reported
    assert ops.latency_p50 == 2.5
    assert ops.latency_p95 is None  # four outputs cannot place a 95th percentile
    assert ops.peak_memory_mb == 300.0
    assert (ops.failure_rate, ops.retry_rate) == (0.2, 0.4)
    assert ops.cost_per_image == pytest.approx(4.0 / 3 * 3.6 / 3600)
    assert "GPU-seconds" in ops.cost_basis


def test_a_hand_entered_price_wins_and_nothing_known_is_said() -> None:
    priced = operations(_record(price_per_image=0.04), gpu_hour_price=3.6)
    assert priced.cost_per_image == 0.04 and "by hand" in priced.cost_basis
    unknown = operations(
        _record(seconds=[], gpu_seconds=[], peak_memory_mb=[], media_seconds=[], items=0),
        gpu_hour_price=3.6,
    )
    assert unknown.cost_per_image is None and unknown.cost_basis.startswith("unknown")
    assert unknown.latency_p50 is None and unknown.failure_rate is None


def test_p95_from_twenty_outputs_and_gpu_seconds_per_video_second() -> None:
    seconds = [float(s) for s in range(1, 21)]
    ops = operations(
        _record(
            seconds=seconds, gpu_seconds=[2.0] * 20, peak_memory_mb=[None] * 20,
            media_seconds=[4.0] * 20,
        ),
        gpu_hour_price=None,
    )  # fmt: skip
    assert ops.latency_p95 == pytest.approx(np.quantile(seconds, 0.95))
    assert ops.gpu_seconds_per_media_second == 0.5
    assert ops.cost_per_image is None  # no GPU-hour price: GPU-seconds are not money
    one_fewer = _record(
        seconds=seconds[1:], gpu_seconds=[2.0] * 19, peak_memory_mb=[None] * 19,
        media_seconds=[4.0] * 19,
    )  # fmt: skip
    assert P95_MIN_OUTPUTS == 20
    assert operations(one_fewer, gpu_hour_price=None).latency_p95 is None


def test_pareto_front_keeps_what_nothing_dominates() -> None:
    # c is dominated by b (better and cheaper); d ties b exactly and stays; e is unknown.
    score = [10.0, 8.0, 7.0, 8.0, None]
    cost = [5.0, 2.0, 3.0, 2.0, 1.0]
    assert pareto_front(score, cost) == [True, True, False, True, False]


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"), [(30, 50, 20, 50), (9, 10, 1, 12), (0, 15, 4, 15)]
)
def test_newcombe_interval_matches_statsmodels(k1: int, n1: int, k2: int, n2: int) -> None:
    d, low, high = newcombe_difference(k1, n1, k2, n2)
    want_low, want_high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb")
    assert d == pytest.approx(k1 / n1 - k2 / n2, abs=1e-6)
    assert (low, high) == (pytest.approx(want_low, abs=1e-6), pytest.approx(want_high, abs=1e-6))


def test_newcombe_without_trials_gives_nothing() -> None:
    assert newcombe_difference(0, 0, 3, 5) == (None, None, None)


def test_group_gaps_count_ties_as_half_and_do_not_mirror_two_groups() -> None:
    first = np.array([0, 0, 1, 0])
    second = np.array([1, 1, 0, 1])
    outcome = np.array([Outcome.FIRST, Outcome.TIE, Outcome.FIRST, Outcome.SECOND])
    gaps = group_gaps(
        systems=("a", "b"), first=first, second=second, credit_first=credit_first(outcome),
        group=["x", "x", "y", None], attribute="g",
    )  # fmt: skip
    assert [(g.system, g.group) for g in gaps] == [("a", "x"), ("b", "x")]
    a = gaps[0]
    # a on x: a win and a tie (1.5 of 2); on y: b won the one vote (0 of 1); the vote
    # whose prompt has no group is in neither.
    assert (a.win_rate, a.votes, a.other_win_rate, a.other_votes) == (0.75, 2, 0.0, 1)
    assert a.difference == 0.75
    assert gaps[1].win_rate == 0.25


def test_one_group_gives_no_gap() -> None:
    assert not group_gaps(
        systems=("a", "b"), first=np.array([0]), second=np.array([1]),
        credit_first=np.array([1.0]), group=["x"], attribute="g",
    )  # fmt: skip


def test_robustness_names_the_worst_category_and_the_spread() -> None:
    groups = [
        BreakdownGroup(
            "cats", 40, True, None, (make_row("a", elo=1100.0), make_row("b", elo=900.0))
        ),
        BreakdownGroup(
            "dogs", 40, True, None, (make_row("a", elo=1020.0), make_row("b", elo=980.0))
        ),
        BreakdownGroup("fish", 3, False, "too few votes", ()),
    ]
    a, b = robustness(["a", "b"], groups)
    assert (a.worst, a.spread) == ("dogs", 80.0)
    assert (b.worst, b.spread) == ("cats", 80.0)
    assert [c.category for c in a.categories] == ["cats", "dogs"]  # the unfitted one is left out


def _decide(**overrides: object):  # type: ignore[no-untyped-def]
    replicates = np.array([[2.0, 1.0, 0.0], [0.5, 1.0, 0.0], [3.0, 2.0, 1.0], [2.0, 0.0, 1.0]])
    fields: dict[str, object] = {
        "systems": ["a", "b", "c"],
        "scores": [1100.0, 1000.0, 900.0],
        "costs": [0.05, 0.01, None],
        "latencies": [8.0, 2.0, 1.0],
        "replicate_systems": ("a", "b", "c"),
        "replicates": replicates,
        "budget": None,
        "latency": None,
    }
    fields.update(overrides)
    return decide(**fields)  # type: ignore[arg-type]


def test_decision_without_bounds_sets_the_best_against_the_runner_up() -> None:
    decision = _decide()
    assert (decision.best, decision.runner_up) == ("a", "b")
    assert decision.probability == 0.75  # a above b in 3 of the 4 replicates


def test_a_budget_leaves_out_the_dear_and_the_unknown() -> None:
    decision = _decide(budget=0.02)
    assert decision.remaining == ("b",)
    assert dict(decision.excluded) == {"a": "costs 0.05 per image", "c": "no cost known"}
    assert decision.best == "b" and decision.runner_up is None and decision.probability is None
    assert any("Only one system" in n for n in decision.notes)


def test_a_latency_bound_and_systems_not_compared_together() -> None:
    decision = _decide(latency=3.0, replicate_systems=("a", "b"), replicates=np.ones((4, 2)))
    assert decision.remaining == ("b", "c")
    assert decision.probability is None
    assert any("not compared in one connected group" in n for n in decision.notes)
    assert _decide(budget=0.0).best is None
