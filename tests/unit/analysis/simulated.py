"""Simulated Bradley–Terry votes for the analysis tests."""

import numpy as np

from analysis.core.types import Outcome
from analysis.core.votes import VoteTable, make_vote_table


def bt_votes(n: int, theta: list[float], *, seed: int, raters: int) -> VoteTable:
    """``n`` votes between systems s0… of true log-strengths ``theta``, each pair drawn
    at random, cast by ``raters`` raters at random; no ties."""
    rng = np.random.default_rng(seed)
    m = len(theta)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    strength = np.asarray(theta)
    p = 1 / (1 + np.exp(-(strength[first] - strength[second])))
    who = rng.integers(0, raters, n)
    return make_vote_table(
        systems=tuple(f"s{k}" for k in range(m)),
        first=first,
        second=second,
        outcome=np.where(rng.random(n) < p, Outcome.FIRST, Outcome.SECOND),
        position_known=True,
        rater=who,
        raters=tuple(f"r{k}" for k in range(raters)),
    )
