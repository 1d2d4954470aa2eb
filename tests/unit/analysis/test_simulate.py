import numpy as np

from analysis.core.bt import fit_bradley_terry
from analysis.core.simulate import RaterPanel, simulate_votes, votes_to_separate
from analysis.core.types import Outcome


def test_simulator_follows_its_parameters() -> None:
    panel = RaterPanel(
        n_raters=100, votes_per_rater=200, position_bias=0.5, tie_strength=0.4, both_bad_share=0.5
    )
    sim = simulate_votes(np.zeros(4), panel, rng=1)
    votes = sim.votes
    assert votes.n_votes == 20_000 and len(votes.raters) == 100
    decisive = votes.outcome <= Outcome.SECOND
    left_share = (votes.outcome[decisive] == Outcome.FIRST).mean()
    assert abs(left_share - 1 / (1 + np.exp(-0.5))) < 0.02  # equal systems: only the bias
    draws = np.isin(votes.outcome, [Outcome.TIE, Outcome.BOTH_BAD])
    assert abs((votes.outcome[draws] == Outcome.BOTH_BAD).mean() - 0.5) < 0.03
    fit = fit_bradley_terry(votes.counts(ordered=True), position=True)
    assert fit.position_effect is not None and abs(fit.position_effect - 0.5) < 0.06
    assert fit.tie_strength is not None and abs(fit.tie_strength - 0.4) < 0.05


def test_simulated_truth_is_recovered() -> None:
    truth = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    sim = simulate_votes(truth, RaterPanel(n_raters=100, votes_per_rater=100), rng=2)
    fit = fit_bradley_terry(sim.votes.counts(ordered=False))
    assert np.all(np.abs(fit.scores - sim.truth) < 4 * fit.standard_errors)
    assert np.argsort(-fit.scores).tolist() == [0, 1, 2, 3, 4]


def test_power_analysis_needs_more_votes_for_closer_systems() -> None:
    far = votes_to_separate(np.array([0.6, 0.0, -0.6]), simulations=30, rng=3)
    near = votes_to_separate(np.array([0.3, 0.0, -0.3]), simulations=30, rng=3)
    assert far.votes_needed is not None and near.votes_needed is not None
    assert near.votes_needed > far.votes_needed
    powers = [p.power for p in near.curve]
    assert powers[-1] >= 0.8 and powers[0] < 0.8
