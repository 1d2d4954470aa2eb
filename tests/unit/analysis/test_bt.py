"""Bradley–Terry fits against published values and an independent implementation."""

import choix
import numpy as np
import pytest

from analysis.core import bt
from analysis.core.bt import ELO_PER_UNIT, fit_bradley_terry, win_probabilities
from analysis.core.counts import count_pairs
from analysis.core.simulate import davidson_outcome
from tests.unit.analysis.conftest import expand_pairs, read_csv

# Published estimates are printed to 2 (baseball) and 4 (citations) decimals.
BASEBALL_DIGITS = 2
CITATIONS_DIGITS = 4
CHOIX_TOLERANCE = 1e-8  # log-strength units, after centring both


def _baseball(human_data):  # type: ignore[no-untyped-def]
    rows = [
        (r["home_team"], r["away_team"], int(r["home_wins"]), int(r["away_wins"]))
        for r in read_csv(human_data / "bt-textbook" / "baseball.csv")
    ]
    return expand_pairs(rows)


def test_baseball_abilities_match_agresti_to_the_printed_digit(human_data) -> None:  # type: ignore[no-untyped-def]
    names, first, second, outcome = _baseball(human_data)
    fit = fit_bradley_terry(count_pairs(first, second, outcome, n_systems=len(names)), l2=0)
    relative = fit.scores - fit.scores[names.index("Baltimore")]
    others = sorted(np.delete(relative, names.index("Baltimore")))
    assert np.round(others, BASEBALL_DIGITS).tolist() == [0.68, 1.11, 1.25, 1.29, 1.44, 1.58]
    assert fit.converged


def test_baseball_home_advantage_is_the_position_effect(human_data) -> None:  # type: ignore[no-untyped-def]
    names, first, second, outcome = _baseball(human_data)
    counts = count_pairs(first, second, outcome, n_systems=len(names), ordered=True)
    fit = fit_bradley_terry(counts, l2=0, position=True)
    assert fit.position_effect is not None and round(fit.position_effect, 3) == 0.302
    assert fit.position_se is not None and 0.1 < fit.position_se < 0.2


def test_citation_coefficients_and_deviance_match_turner_and_firth(human_data) -> None:  # type: ignore[no-untyped-def]
    rows = [
        (
            r["journal_1"],
            r["journal_2"],
            int(r["journal_1_cited_by_journal_2"]),
            int(r["journal_2_cited_by_journal_1"]),
        )
        for r in read_csv(human_data / "bt-textbook" / "citations.csv")
    ]
    names, first, second, outcome = expand_pairs(rows)
    counts = count_pairs(first, second, outcome, n_systems=len(names), ordered=False)
    fit = fit_bradley_terry(counts, l2=0)
    relative = {
        n: round(float(fit.scores[i] - fit.scores[names.index("Biometrika")]), CITATIONS_DIGITS)
        for i, n in enumerate(names)
    }
    assert relative == {
        "Biometrika": 0.0,
        "Comm Statist": -2.9491,
        "JASA": -0.4796,
        "JRSS-B": 0.269,
    }
    # Residual deviance of the binomial model: 2 Σ obs log(obs / fitted).
    p = fit.win_probabilities()
    wins = counts.counts[:, 0]
    total = counts.counts[:, :2].sum(axis=1)
    expected = total * p[counts.first, counts.second]
    observed = np.stack([wins, total - wins])
    fitted = np.stack([expected, total - expected])
    deviance = 2 * float((observed * np.log(observed / fitted)).sum())
    assert round(deviance, 3) == 4.293


def _random_votes(m: int, n: int, seed: int, tie_strength: float = 0.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, m)
    i = rng.integers(0, m, n)
    j = (i + rng.integers(1, m, n)) % m
    outcome = davidson_outcome(theta[i] - theta[j], tie_strength, rng.random(n))
    return theta - theta.mean(), i, j, outcome


@pytest.mark.parametrize(("m", "n", "seed"), [(5, 500, 1), (20, 20_000, 2), (60, 30_000, 3)])
def test_scores_equal_choix_on_the_same_votes(m: int, n: int, seed: int) -> None:
    _, i, j, outcome = _random_votes(m, n, seed)
    fit = fit_bradley_terry(count_pairs(i, j, outcome, n_systems=m), l2=0)
    data = [
        (a, b) if o == 0 else (b, a)
        for a, b, o in zip(i.tolist(), j.tolist(), outcome.tolist(), strict=True)
    ]
    reference = choix.ilsr_pairwise(m, data, alpha=0, tol=1e-12)
    assert np.max(np.abs((reference - reference.mean()) - fit.scores)) < CHOIX_TOLERANCE


def test_half_ties_equal_choix_with_each_tie_as_two_half_wins() -> None:
    _, i, j, outcome = _random_votes(8, 4000, 4, tie_strength=0.6)
    fit = fit_bradley_terry(count_pairs(i, j, outcome, n_systems=8), ties="half", l2=0)
    # A tie counted as half a win each is a win each way with weight 1/2: double every
    # decisive vote and split each tie into one win each way.
    data = []
    for a, b, o in zip(i.tolist(), j.tolist(), outcome.tolist(), strict=True):
        data += [(a, b), (a, b)] if o == 0 else [(b, a), (b, a)] if o == 1 else [(a, b), (b, a)]
    reference = choix.ilsr_pairwise(8, data, alpha=0, tol=1e-12)
    assert np.max(np.abs((reference - reference.mean()) - fit.scores)) < CHOIX_TOLERANCE


def test_davidson_recovers_strengths_and_tie_parameter() -> None:
    theta, i, j, outcome = _random_votes(6, 200_000, 5, tie_strength=0.5)
    fit = fit_bradley_terry(count_pairs(i, j, outcome, n_systems=6))
    assert fit.tie_strength is not None and abs(fit.tie_strength - 0.5) < 0.02
    assert np.max(np.abs(fit.scores - theta)) < 5 * fit.standard_errors.max()


def test_both_bad_is_a_tie_by_default_or_left_out() -> None:
    first, second = np.array([0, 0, 1, 1, 0]), np.array([1, 1, 0, 0, 1])
    outcome = np.array([0, 3, 3, 1, 2])
    counts = count_pairs(first, second, outcome, n_systems=2)
    as_tie = fit_bradley_terry(counts, l2=0.1)
    same = fit_bradley_terry(
        count_pairs(first, second, np.where(outcome == 3, 2, outcome), n_systems=2), l2=0.1
    )
    dropped = fit_bradley_terry(counts, both_bad="drop", l2=0.1)
    only_decisive = fit_bradley_terry(
        count_pairs(first[[0, 3, 4]], second[[0, 3, 4]], outcome[[0, 3, 4]], n_systems=2), l2=0.1
    )
    assert np.allclose(as_tie.scores, same.scores)
    assert np.allclose(dropped.scores, only_decisive.scores)


def test_a_system_that_never_lost_stays_finite_with_the_default_prior() -> None:
    first = np.array([0] * 20 + [1] * 5 + [2] * 5)
    second = np.array([1] * 10 + [2] * 10 + [2] * 5 + [1] * 5)
    outcome = np.array([0] * 20 + [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    counts = count_pairs(first, second, outcome, n_systems=3)
    fit = fit_bradley_terry(counts)
    assert fit.converged and np.all(np.isfinite(fit.scores))
    assert fit.scores[0] == fit.scores.max() and fit.scores[0] - fit.scores[1] < 6
    with pytest.raises(ValueError, match="never both won and lost"):
        fit_bradley_terry(counts, l2=0)


def test_disconnected_comparisons_are_refused_without_a_prior() -> None:
    counts = count_pairs(
        np.array([0, 1, 2, 3]), np.array([1, 0, 3, 2]), np.array([0, 0, 0, 0]), n_systems=4
    )
    with pytest.raises(ValueError, match="split into 2 groups"):
        fit_bradley_terry(counts, l2=0)
    assert fit_bradley_terry(counts).converged


def test_default_prior_barely_moves_well_measured_scores() -> None:
    _, i, j, outcome = _random_votes(10, 50_000, 6)
    counts = count_pairs(i, j, outcome, n_systems=10)
    penalised, plain = fit_bradley_terry(counts), fit_bradley_terry(counts, l2=0)
    assert np.max(np.abs(penalised.elo() - plain.elo())) < 1.0  # Elo points


def test_matrix_free_newton_equals_the_dense_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    _, i, j, outcome = _random_votes(250, 60_000, 7, tie_strength=0.3)
    counts = count_pairs(i, j, outcome, n_systems=250)
    matrix_free = fit_bradley_terry(counts)  # 250 > _DENSE_UP_TO
    monkeypatch.setattr(bt, "_DENSE_UP_TO", 10_000)
    dense = fit_bradley_terry(counts)
    assert np.max(np.abs(matrix_free.scores - dense.scores)) < 1e-9


def test_fisher_covariance_is_centred_and_matches_the_curvature() -> None:
    _, i, j, outcome = _random_votes(6, 5000, 8)
    fit = fit_bradley_terry(count_pairs(i, j, outcome, n_systems=6), l2=0)
    assert np.allclose(fit.cov.sum(axis=0), 0, atol=1e-12)
    # Each score's variance is the inverse of its curvature with the others held fixed
    # at most: the covariance cannot be smaller than that.
    assert np.all(np.diag(fit.cov) > 0)


def test_elo_scale_and_win_probabilities() -> None:
    scores = np.array([1.0, 0.0, -1.0])
    p = win_probabilities(scores)
    assert np.isclose(p[0, 1], 1 / (1 + np.exp(-1)))
    off = ~np.eye(3, dtype=bool)
    assert np.allclose((p + p.T)[off], 1)
    ties = win_probabilities(scores, tie_strength=1.0)
    assert np.all((ties + ties.T)[off] < 1)  # room left for ties
    _, i, j, outcome = _random_votes(3, 3000, 9)
    fit = fit_bradley_terry(count_pairs(i, j, outcome, n_systems=3))
    assert np.allclose(fit.elo() - 1000, ELO_PER_UNIT * fit.scores)
    assert fit.elo(anchor=2)[2] == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ties": "maybe"}, "ties must be"),
        ({"both_bad": "x"}, "both_bad must be"),
        ({"l2": -1}, "l2 must be"),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    counts = count_pairs(np.array([0]), np.array([1]), np.array([0]), n_systems=2)
    with pytest.raises(ValueError, match=message):
        fit_bradley_terry(counts, **kwargs)  # type: ignore[arg-type]


def test_count_table_is_one_pass_and_folds_orders() -> None:
    first, second, outcome = np.array([0, 1, 1, 0]), np.array([1, 0, 0, 1]), np.array([0, 0, 2, 3])
    ordered = count_pairs(first, second, outcome, n_systems=2, ordered=True)
    assert ordered.counts.tolist() == [[1, 0, 0, 1], [1, 0, 1, 0]]
    folded = count_pairs(first, second, outcome, n_systems=2, ordered=False)
    assert folded.counts.tolist() == [[1, 1, 1, 1]]  # 1's win over 0 is 0's loss
    with pytest.raises(ValueError, match="with itself"):
        count_pairs(np.array([1]), np.array([1]), np.array([0]), n_systems=2)
