from collections.abc import Sequence

import numpy as np

from analysis.core.quality import QualityThresholds, exclude_flagged, rater_quality
from analysis.core.simulate import RaterPanel, simulate_votes
from analysis.core.types import Outcome
from analysis.core.votes import make_vote_table

# A flag may be wrong now and then; these are the rates a useful flag must beat.
MAX_FALSE_POSITIVES = 0.05
MIN_SPAMMERS_CAUGHT = 0.9


def test_spammers_are_flagged_and_attentive_raters_are_not() -> None:
    panel = RaterPanel(
        n_raters=200,
        votes_per_rater=40,
        noise=0.2,
        spammer_share=0.15,
        check_rate=0.1,
        tie_strength=0.3,
    )
    sim = simulate_votes(np.linspace(1.5, -1.5, 6), panel, rng=0)
    quality = rater_quality(sim.votes, check_rater=sim.check_rater, check_passed=sim.check_passed)
    flagged = np.array([bool(q.flags) for q in quality])
    assert flagged[sim.spammer].mean() >= MIN_SPAMMERS_CAUGHT
    assert flagged[~sim.spammer].mean() <= MAX_FALSE_POSITIVES
    excluded = exclude_flagged(sim.votes, quality)
    assert excluded.excluded_raters == int(flagged.sum())
    assert excluded.votes.n_votes == sim.votes.n_votes - excluded.excluded_votes
    assert not np.isin(excluded.votes.rater, [q.rater for q in quality if q.flags]).any()


def _table(  # type: ignore[no-untyped-def]
    first: Sequence[int],
    second: Sequence[int],
    outcome: Sequence[int],
    rater: Sequence[int],
    ms: Sequence[float],
    unit: Sequence[int] | None = None,
):
    return make_vote_table(
        systems=("a", "b", "c", "d", "e"),
        first=np.array(first),
        second=np.array(second),
        outcome=np.array(outcome),
        position_known=True,
        rater=np.array(rater),
        raters=("r0", "r1"),
        response_ms=np.array(ms, dtype=float),
        unit=None if unit is None else np.array(unit),
    )


def test_each_flag_names_its_reason() -> None:
    thresholds = QualityThresholds(
        side_min_votes=10,
        fast_min_votes=5,
        repeat_min=3,
        repeat_share=0.5,
        triad_min=1,
        triad_share=0.5,
    )
    # Rater 0: always left, fast. Rater 1: a cycle a > b > c > a, answers changed on repeats.
    first = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1] + [0, 1, 0, 3, 3, 3]
    second = [1, 2, 3, 4, 0, 2, 3, 4, 0, 1, 3, 4] + [1, 2, 2, 4, 4, 4]
    outcome = [Outcome.FIRST] * 12 + [
        Outcome.FIRST,
        Outcome.FIRST,
        Outcome.SECOND,
        Outcome.SECOND,
        Outcome.FIRST,
        Outcome.SECOND,
    ]
    rater = [0] * 12 + [1] * 6
    ms = [300.0] * 12 + [2500.0] * 6
    unit = list(range(12)) + [20, 21, 22, 23, 23, 23]
    quality = {
        q.rater: q
        for q in rater_quality(
            _table(first, second, outcome, rater, ms, unit),
            check_rater=np.array([0, 0, 0]),
            check_passed=np.array([False, False, True]),
            thresholds=thresholds,
        )
    }
    assert set(quality[0].flags) == {"straight_lining", "too_fast", "failed_checks"}
    assert quality[0].left_share == 1.0 and quality[0].failed_checks == 2
    assert "intransitive" in quality[1].flags and quality[1].cyclic == quality[1].triads == 1
    assert "inconsistent" not in quality[1].flags  # one repeated unit is below repeat_min


def test_triads_by_matrix_powers_equal_enumerating_every_triple() -> None:
    import itertools

    from analysis.core.quality import _cyclic_triads

    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(0, 9))
        low, high, won = [], [], []
        for a, b in itertools.combinations(range(n), 2):
            k = int(rng.choice([0, 1, 1, 2, 3]))
            low += [a] * k
            high += [b] * k
            won += list(rng.random(k) < 0.5)
        low_a, high_a, won_a = np.array(low, int), np.array(high, int), np.array(won, bool)
        # By hand: each pair's majority winner, then every triple of decided pairs.
        winner = {}
        for a, b in itertools.combinations(range(n), 2):
            mine = (low_a == a) & (high_a == b)
            wins, total = int(won_a[mine].sum()), int(mine.sum())
            if total and 2 * wins != total:
                winner[(a, b)] = a if 2 * wins > total else b
        triads = cyclic = 0
        for a, b, c in itertools.combinations(range(n), 3):
            pairs = ((a, b), (b, c), (a, c))
            if all(p in winner for p in pairs):
                triads += 1
                # Cyclic: each of the three systems wins exactly one of its pairs.
                cyclic += sorted(winner[p] for p in pairs) == [a, b, c]
        assert _cyclic_triads(low_a, high_a, won_a) == (triads, cyclic)
