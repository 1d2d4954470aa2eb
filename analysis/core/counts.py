"""One pass over the votes into per-pair counts; every fit starts from these."""

from dataclasses import dataclass

import numpy as np

from analysis.core.types import N_OUTCOMES, FloatArray, IntArray, Outcome


@dataclass(frozen=True)
class PairCounts:
    """Votes aggregated per pair of systems.

    Row ``r`` counts the votes between ``first[r]`` and ``second[r]``, one column per
    :class:`Outcome`. With ``ordered`` the rows keep the shown order (``first`` was on the
    left); otherwise each unordered pair is one row with ``first < second``.
    """

    n_systems: int
    first: IntArray
    second: IntArray
    counts: FloatArray
    ordered: bool

    @property
    def n_votes(self) -> int:
        return int(self.counts.sum())


def _validate_votes(first: IntArray, second: IntArray, outcome: IntArray, n_systems: int) -> None:
    if not first.shape == second.shape == outcome.shape or first.ndim != 1:
        raise ValueError("first, second and outcome must be 1-d arrays of the same length")
    if first.size and (
        min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= n_systems
    ):
        raise ValueError(f"system indices must lie in [0, {n_systems})")
    if np.any(first == second):
        raise ValueError("a vote compares a system with itself (first == second)")
    if outcome.size and (outcome.min() < 0 or outcome.max() >= N_OUTCOMES):
        raise ValueError(f"outcome codes must lie in [0, {N_OUTCOMES})")


def row_index(counts: PairCounts, first: IntArray, second: IntArray) -> IntArray | None:
    """The table's row of each (first, second) pair; None if one has no row."""
    m = counts.n_systems
    keys = counts.first * m + counts.second
    wanted = np.asarray(first) * m + np.asarray(second)
    position = np.searchsorted(keys, wanted)
    if keys.size == 0 or not np.array_equal(keys[np.minimum(position, keys.size - 1)], wanted):
        return None
    return np.asarray(position, dtype=np.int64)


def fold_pairs(
    first: IntArray, second: IntArray, outcome: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Each vote as (lower system, higher system, outcome relative to the lower one): the
    unordered view that raters of the same pair agree or disagree on."""
    swap = first > second
    low, high = np.where(swap, second, first), np.where(swap, first, second)
    flipped = np.where(outcome == Outcome.FIRST, Outcome.SECOND, Outcome.FIRST)
    return low, high, np.where(swap & (outcome <= Outcome.SECOND), flipped, outcome)


def count_pairs(
    first: IntArray,
    second: IntArray,
    outcome: IntArray,
    *,
    n_systems: int,
    ordered: bool = True,
) -> PairCounts:
    """Aggregate votes into per-pair outcome counts in one pass.

    Parameters
    ----------
    first, second : ndarray of int, shape (n_votes,)
        System indices of each vote; ``first`` is the left one when the position is known.
    outcome : ndarray of int, shape (n_votes,)
        :class:`Outcome` codes relative to ``first``.
    n_systems : int
        Number of systems (indices run from 0 to ``n_systems - 1``).
    ordered : bool
        Keep the shown order (needed for a position effect); otherwise fold each pair
        into one row with ``first < second``.

    Returns
    -------
    PairCounts

    Raises
    ------
    ValueError
        If the arrays disagree in shape or hold out-of-range codes.

    Example
    -------
    >>> first, second = np.array([0, 1]), np.array([1, 0])
    >>> c = count_pairs(first, second, np.array([0, 0]), n_systems=2, ordered=False)
    >>> c.counts.tolist()
    [[1.0, 1.0, 0.0, 0.0]]
    """
    cells = pair_cells(first, second, outcome, n_systems=n_systems, ordered=ordered)
    return counts_of_cells(cells, n_systems=n_systems, ordered=ordered)


def pair_cells(
    first: IntArray, second: IntArray, outcome: IntArray, *, n_systems: int, ordered: bool
) -> IntArray:
    """Each vote's cell of the (pair, outcome) table: what :func:`count_pairs` counts.
    Computed once, the cells count any subset of the votes (a split half) with one
    bincount, without validating and folding them again."""
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    _validate_votes(first, second, outcome, n_systems)
    if not ordered:
        first, second, outcome = fold_pairs(first, second, outcome)
    return (first * n_systems + second) * N_OUTCOMES + outcome


def counts_of_cells(cells: IntArray, *, n_systems: int, ordered: bool) -> PairCounts:
    """The per-pair counts of votes given by their :func:`pair_cells`."""
    n_cells = n_systems * n_systems * N_OUTCOMES
    if n_cells <= max(4 * cells.size, 1 << 16):
        table = np.bincount(cells, minlength=n_cells).reshape(-1, N_OUTCOMES)
        rows = np.flatnonzero(table.any(axis=1))
        counts = table[rows]
    else:  # many systems, few votes: sort instead of a dense table
        pair, outcome = np.divmod(cells, N_OUTCOMES)
        rows, inverse = np.unique(pair, return_inverse=True)
        counts = np.zeros((rows.size, N_OUTCOMES), dtype=np.int64)
        np.add.at(counts, (inverse.reshape(-1), outcome), 1)
    return PairCounts(
        n_systems=n_systems,
        first=(rows // n_systems).astype(np.int64),
        second=(rows % n_systems).astype(np.int64),
        counts=counts.astype(np.float64),
        ordered=ordered,
    )
