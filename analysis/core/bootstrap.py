"""Bootstrap intervals for Bradley–Terry scores, resampling votes or raters.

Both resample the per-pair count table, never vote rows: by vote, a replicate is a
multinomial draw of the table (all replicates drawn at once); by rater, a replicate sums
the tables of raters drawn with replacement (votes of one rater are correlated, so this is
the honest interval when a few raters cast many votes). Every replicate is then fitted in
one batch from the point estimate (:func:`analysis.core.bt.refit_replicates`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from analysis.core.bt import BTFit, refit_replicates, rows_of
from analysis.core.counts import PairCounts, fold_pairs, row_index
from analysis.core.graph import open_sides_batch
from analysis.core.rates import two_sided_z
from analysis.core.types import N_OUTCOMES, BoolArray, FloatArray, IntArray, Outcome

BY = ("vote", "rater")
# Replicates per batch: keeps the working arrays near the caches.
_BLOCK_CELLS = 1_500_000
_LUT_BITS = 16


@dataclass(frozen=True)
class BootstrapResult:
    """Replicate scores and what is read off them.

    ``samples`` holds centred log-strengths (replicates, systems). Intervals are
    percentile intervals at ``level``; ``rank_low``/``rank_high`` bound each system's
    rank (1 = best); ``prob_better[i, j]`` is the share of replicates where i scores
    above j, and ``better`` marks the pairs where that share clears the level.
    ``open_high``/``open_low`` are the shares of replicates whose data leave a system's
    score unbounded above/below, and ``without_mle`` counts the replicates with any such
    system (they have no maximum-likelihood estimate; with a prior they rest on it).
    """

    samples: FloatArray
    level: float
    by: str
    low: FloatArray
    high: FloatArray
    rank_low: IntArray
    rank_high: IntArray
    prob_better: FloatArray
    non_converged: int
    open_high: FloatArray
    open_low: FloatArray
    without_mle: int

    @property
    def better(self) -> BoolArray:
        return np.asarray(self.prob_better >= 1 - (1 - self.level) / 2)


# A lookup table pays for its 65,536 entries only when many cells share a count; rarer
# counts are drawn by numpy's Poisson generator (also exact).
_LUT_MIN_CELLS = 64


def _poisson_table(mean: float) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The Poisson CDF on a 2^32 grid, and a lookup table from the top 16 bits of a
    32-bit uniform to the draw (-1 where a CDF step falls inside the bucket, which then
    needs the low 16 bits too)."""
    buckets = np.arange(1 << 16, dtype=np.uint64) << np.uint64(16)
    top = int(mean + 12 * np.sqrt(mean) + 12)
    cdf = stats.poisson.cdf(np.arange(top + 1), mean)
    grid = np.minimum(np.floor(cdf * 2.0**32), 2.0**32 - 1).astype(np.uint32)
    lo = np.searchsorted(grid, buckets, side="right")
    hi = np.searchsorted(grid, buckets + np.uint64(0xFFFF), side="right")
    kind = np.int16 if top < 32_000 else np.int32
    return grid, np.where(lo == hi, lo, -1).astype(kind)


class MultinomialSampler:
    """Draws tables from multinomial(N, counts / N), N = counts.sum(), exactly and fast.

    Each cell is drawn Poisson(counts · (1 − δ)), δ = 3/√N (by table lookup on 16 random
    bits, 16 more only where the lookup is ambiguous, for counts many cells share; by
    numpy's generator for the others), so that a replicate nearly always
    falls short of N. Given its total s it is multinomial(s, counts / N); the N − s
    missing votes are drawn from counts / N, and a multinomial plus an independent
    multinomial of the rest is a multinomial of the sum. The rare replicate above N has
    random votes removed instead. Uniforms are 32-bit: probabilities are exact to 2^-32.
    The tables are built once and serve every block of replicates.

    References
    ----------
    Devroye (1986), Non-Uniform Random Variate Generation, ch. XI.1 (multinomials via
    Poisson variates).
    """

    _PICK_BITS = 18

    def __init__(self, counts: IntArray):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.total = int(self.counts.sum())
        live = np.flatnonzero(self.counts)
        self.order = live[np.argsort(self.counts[live], kind="stable")]
        values, starts = np.unique(self.counts[self.order], return_index=True)
        self.spans = list(zip(starts, np.append(starts[1:], self.order.size), strict=True))
        shrink = max(0.0, 1.0 - 3.0 / np.sqrt(max(self.total, 1)))
        self.means = (values * shrink).tolist()
        self.tables = [
            _poisson_table(mean) if end - start >= _LUT_MIN_CELLS else None
            for mean, (start, end) in zip(self.means, self.spans, strict=True)
        ]
        # Categorical draws over the cells: a lookup on 18 bits, exact with the other 14.
        self.cumulative = np.minimum(
            np.floor(np.cumsum(self.counts[self.order]) / max(self.total, 1) * 2.0**32), 2.0**32 - 1
        ).astype(np.uint32)
        shift = np.uint64(32 - self._PICK_BITS)
        edges = np.arange(1 << self._PICK_BITS, dtype=np.uint64) << shift
        lo = np.searchsorted(self.cumulative, edges, side="right")
        hi = np.searchsorted(
            self.cumulative, edges + (np.uint64(1) << shift) - np.uint64(1), side="right"
        )
        self.pick = np.where(lo == hi, lo, -1).astype(np.int32)

    def _categorical(self, size: int, rng: np.random.Generator) -> IntArray:
        u = rng.integers(0, 1 << 32, size=size, dtype=np.uint32)
        cells = self.pick[u >> np.uint32(32 - self._PICK_BITS)]
        unsure = np.flatnonzero(cells < 0)
        cells[unsure] = np.searchsorted(self.cumulative, u[unsure], side="right")
        return np.asarray(cells, dtype=np.int64)

    def draw(self, replicates: int, rng: np.random.Generator) -> npt.NDArray[np.int32]:
        width = self.order.size
        bits = rng.bit_generator.random_raw((replicates * width + 3) // 4).view(np.uint16)
        high = bits[: replicates * width].reshape(replicates, width)
        drawn = np.empty((replicates, width), dtype=np.int32)
        for mean, table, (start, end) in zip(self.means, self.tables, self.spans, strict=True):
            if table is None:
                drawn[:, start:end] = rng.poisson(mean, size=(replicates, end - start))
                continue
            grid, lut = table
            block = lut[high[:, start:end]].astype(np.int32)
            unsure = np.nonzero(block < 0)
            if unsure[0].size:
                low = rng.integers(0, 1 << 16, size=unsure[0].size, dtype=np.uint32)
                full = (high[:, start:end][unsure].astype(np.uint32) << np.uint32(16)) | low
                block[unsure] = np.searchsorted(grid, full, side="right")
            drawn[:, start:end] = block
        short = self.total - drawn.sum(axis=1, dtype=np.int64)
        need = np.maximum(short, 0)
        owner = np.repeat(np.arange(replicates), need)
        extra = np.bincount(
            owner * width + self._categorical(owner.size, rng), minlength=replicates * width
        )
        drawn += extra.reshape(replicates, width).astype(np.int32)
        for r in np.flatnonzero(short < 0).tolist():
            have = int(drawn[r].sum())
            taken = rng.choice(have, size=have - self.total, replace=False)
            cells = np.searchsorted(np.cumsum(drawn[r]), taken, side="right")
            drawn[r] -= np.bincount(cells, minlength=width).astype(np.int32)
        out = np.zeros((replicates, self.counts.size), dtype=np.int32)
        out[:, self.order] = drawn
        return out


# A row whose wins come from at least this many independent draws (votes, or raters) keeps
# a win in a resample but with probability about e^-10 (5e-5), and losing it matters only
# where it is the sole link between two groups: its edge is taken as sure. At 20, a dense
# study (100 systems, 100k votes, ~10 wins a row) had no sure edge and the check tripled
# the bootstrap's time; at 10 it costs about a tenth.
_SURE_SUPPORT = 10


def _sure_groups(fit: BTFit, support: FloatArray) -> tuple[IntArray, BoolArray, FloatArray]:
    """Groups of systems that stay strongly connected in every resample, from ``support``
    (rows, 4): how many independent draws stand behind each cell of the design's rows.
    Returns each system's group, which rows run between groups, and each group's votes.
    Only the rows between groups can leave a resample without a maximum-likelihood
    estimate, so the per-replicate check runs on that small condensed graph."""
    design = fit.design
    tie_cells = [Outcome.TIE] + ([Outcome.BOTH_BAD] if design.both_bad == "tie" else [])
    beat = support[:, [Outcome.FIRST, *tie_cells]].sum(axis=1) >= _SURE_SUPPORT
    lost = support[:, [Outcome.SECOND, *tie_cells]].sum(axis=1) >= _SURE_SUPPORT
    m = design.n_systems
    winner = np.concatenate([design.i[beat], design.j[lost]])
    loser = np.concatenate([design.j[beat], design.i[lost]])
    graph = coo_matrix((np.ones(winner.size), (winner, loser)), shape=(m, m))
    _, group = connected_components(graph, directed=True, connection="strong")
    cross = group[design.i] != group[design.j]
    inside = np.bincount(group[design.i[~cross]], (fit.a + fit.b + fit.t)[~cross])
    votes = np.zeros(group.max() + 1)
    votes[: inside.size] = inside
    return group, cross, votes


def _refit_in_blocks(
    fit: BTFit,
    replicates: int,
    rows: int,
    draw: Callable[[int], npt.NDArray[Any]],
    support: FloatArray,
) -> tuple[FloatArray, int, BoolArray, BoolArray]:
    """Refit ``replicates`` tables, drawn a block at a time by ``draw(size)`` as
    (size, rows, 4), so that the working arrays stay near the caches. Also returns, per
    replicate and system, whether that replicate's data leave the score unbounded above
    and below (no maximum-likelihood estimate there)."""
    block = max(1, _BLOCK_CELLS // max(rows * N_OUTCOMES, 1))
    samples, failed = [], 0
    design = fit.design
    high = np.zeros((replicates, design.n_systems), dtype=bool)
    low = np.zeros_like(high)
    group, cross, group_votes = _sure_groups(fit, support)
    i, j = group[design.i[cross]], group[design.j[cross]]
    for start in range(0, replicates, block):
        tables = draw(min(block, replicates - start))
        scores, missed = refit_replicates(fit, tables)
        samples.append(scores)
        failed += missed
        if group_votes.size == 1:
            continue  # one group that no resample can split
        a, b, t = design.split(tables)
        stop = start + tables.shape[0]
        group_high, group_low, _ = open_sides_batch(
            group_votes.size,
            i,
            j,
            a[:, cross],
            b[:, cross],
            t[:, cross],
            weight=group_votes,
            decisive=(a + b).sum(axis=1) > 0,
        )
        high[start:stop], low[start:stop] = group_high[:, group], group_low[:, group]
    return np.vstack(samples), failed, high, low


def _summarise(
    refits: tuple[FloatArray, int, BoolArray, BoolArray], level: float, by: str
) -> BootstrapResult:
    samples, failed, high, low = refits
    tail = 100 * (1 - level) / 2
    bounds = np.percentile(samples, [tail, 100 - tail], axis=0)
    # Equal scores share the better rank (replicates of identical data tie exactly).
    ranks = stats.rankdata(-samples, method="min", axis=1).astype(np.int64)
    rank_low, rank_high = np.percentile(ranks, [tail, 100 - tail], axis=0, method="nearest")
    prob = (samples[:, :, None] > samples[:, None, :]).mean(axis=0)
    np.fill_diagonal(prob, np.nan)
    return BootstrapResult(
        samples=samples,
        level=level,
        by=by,
        low=bounds[0],
        high=bounds[1],
        rank_low=rank_low.astype(np.int64),
        rank_high=rank_high.astype(np.int64),
        prob_better=prob,
        non_converged=failed,
        open_high=high.mean(axis=0),
        open_low=low.mean(axis=0),
        without_mle=int((high | low).any(axis=1).sum()),
    )


def _validate(replicates: int, level: float) -> None:
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2, not {replicates}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")


def bootstrap_votes(
    fit: BTFit,
    counts: PairCounts,
    *,
    replicates: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> BootstrapResult:
    """Percentile bootstrap by vote: multinomial resampling of the count table.

    Parameters
    ----------
    fit : BTFit
        The point fit of ``counts`` (its options are reused for every replicate).
    counts : PairCounts
        The table ``fit`` was fitted on.
    replicates : int
        Number of bootstrap replicates.
    level : float
        Coverage of the intervals.
    rng : numpy.random.Generator, int or None
        Source of randomness (seed for reproducible intervals).

    Returns
    -------
    BootstrapResult

    Raises
    ------
    ValueError
        If ``counts`` is not the table of ``fit``, or arguments are out of range.

    References
    ----------
    Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13 (percentile).

    Example
    -------
    >>> from analysis.core.counts import count_pairs
    >>> from analysis.core.bt import fit_bradley_terry
    >>> first, second = np.array([0, 1, 0, 2]), np.array([1, 2, 2, 0])
    >>> c = count_pairs(first, second, np.array([0, 0, 1, 0]), n_systems=3)
    >>> bootstrap_votes(fit_bradley_terry(c), c, replicates=50, rng=0).samples.shape
    (50, 3)
    """
    _validate(replicates, level)
    generator = np.random.default_rng(rng)
    rows = rows_of(fit, counts)
    sampler = MultinomialSampler(counts.counts[rows].astype(np.int64).ravel())

    def draw(size: int) -> npt.NDArray[Any]:
        return sampler.draw(size, generator).reshape(size, rows.size, N_OUTCOMES)

    support = counts.counts[rows]  # each vote is its own draw
    refits = _refit_in_blocks(fit, replicates, rows.size, draw, support)
    return _summarise(refits, level, "vote")


def rater_tables(
    counts: PairCounts, first: IntArray, second: IntArray, outcome: IntArray, rater: IntArray
) -> tuple[csr_matrix, IntArray]:
    """Per-rater count tables as a sparse (raters, rows × 4) matrix, in ``counts``' rows,
    and each table's rater code. Votes with rater -1 (unknown) are each their own table."""
    f, s, o = np.asarray(first), np.asarray(second), np.asarray(outcome)
    if not counts.ordered:
        f, s, o = fold_pairs(f, s, o)
    row = row_index(counts, f, s)
    if row is None:
        raise ValueError("some votes are not in the count table")
    cell = row * N_OUTCOMES + o
    unknown = np.flatnonzero(rater < 0)
    cluster = rater.astype(np.int64).copy()
    known_codes, cluster[rater >= 0] = np.unique(rater[rater >= 0], return_inverse=True)
    cluster[unknown] = known_codes.size + np.arange(unknown.size)
    n_clusters = known_codes.size + unknown.size
    matrix = csr_matrix(
        (np.ones(cell.size), (cluster, cell)), shape=(n_clusters, counts.first.size * N_OUTCOMES)
    )
    codes = np.concatenate([known_codes, np.full(unknown.size, -1)])
    return matrix, codes


def bootstrap_raters(
    fit: BTFit,
    counts: PairCounts,
    tables: csr_matrix,
    *,
    replicates: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> BootstrapResult:
    """Percentile bootstrap by rater (a cluster bootstrap).

    Each replicate draws as many raters as there are, with replacement, and sums their
    count tables (``tables`` from :func:`rater_tables`; votes of unknown raters count as
    one-vote raters). Raters who cast many votes then weigh as much as they should.

    Returns
    -------
    BootstrapResult

    References
    ----------
    Field & Welsh (2007), "Bootstrapping clustered data", JRSS-B 69(3).
    """
    _validate(replicates, level)
    generator = np.random.default_rng(rng)
    rows = rows_of(fit, counts)
    n_clusters = tables.shape[0]
    pick = (rows[:, None] * N_OUTCOMES + np.arange(N_OUTCOMES)).ravel()
    matrix = tables[:, pick].T.tocsr()  # (cells, clusters)

    def draw(size: int) -> npt.NDArray[Any]:
        draws = generator.integers(0, n_clusters, size=(size, n_clusters))
        flat = (np.arange(size)[:, None] * n_clusters + draws).ravel()
        weights = np.bincount(flat, minlength=size * n_clusters).reshape(size, n_clusters)
        summed = matrix @ weights.T.astype(np.float64)
        return np.asarray(summed.T.reshape(size, rows.size, N_OUTCOMES))

    # Distinct raters behind each cell: a resample drops a cell only if it draws none.
    support = np.diff(matrix.indptr).reshape(rows.size, N_OUTCOMES).astype(np.float64)
    refits = _refit_in_blocks(fit, replicates, rows.size, draw, support)
    return _summarise(refits, level, "rater")


def fisher_interval(fit: BTFit, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Wald interval of each centred score from the observed information."""
    z = two_sided_z(level)
    se = fit.standard_errors
    return fit.scores - z * se, fit.scores + z * se
