"""What the comparison graph lets the data identify.

Bradley–Terry scores are comparable only between systems linked by comparisons (the
weakly connected components of the comparison graph), and the maximum-likelihood
estimate exists only where every system both won and lost against the rest, ties
counting both ways: the win graph must be strongly connected (Ford 1957). Where it is
not, a group that nobody outside beat can move up without bound, one that beat nobody
outside can move down, and a group between both can move either way.
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.core.types import BoolArray, FloatArray, IntArray


def comparison_components(n_systems: int, first: IntArray, second: IntArray) -> IntArray:
    """Component label per system; systems never compared are each their own component.

    Labels are numbered by size in votes (0: the most votes), then by lowest system.
    """
    graph = coo_matrix((np.ones(first.size), (first, second)), shape=(n_systems, n_systems))
    _, labels = connected_components(graph, directed=False)
    votes = np.bincount(labels[first], minlength=labels.max() + 1) if first.size else None
    first_member = np.full(labels.max() + 1, n_systems)
    np.minimum.at(first_member, labels, np.arange(n_systems))
    weight = votes if votes is not None else np.zeros(labels.max() + 1, dtype=np.int64)
    order = np.lexsort((first_member, -weight))
    rename = np.empty_like(order)
    rename[order] = np.arange(order.size)
    return np.asarray(rename[labels], dtype=np.int64)


@dataclass(frozen=True)
class OpenSides:
    """Per system, whether the data leave its score unbounded above / below, and its
    strongly connected group of the win graph (differences within a group are
    identified; between groups of a separated component they are not)."""

    high: BoolArray
    low: BoolArray
    group: IntArray

    @property
    def separated(self) -> bool:
        return bool(self.high.any() or self.low.any())


def open_sides(
    n_systems: int, i: IntArray, j: IntArray, a: FloatArray, b: FloatArray, t: FloatArray
) -> OpenSides:
    """Which scores of one comparison component the data cannot bound, from per-row first
    wins ``a``, second wins ``b`` and ties ``t`` (rows (i, j)).

    Systems outside the largest weakly connected piece (a resample can cut one off) are
    open on both sides; inside it, the strongly connected groups of the win graph decide:
    a group nobody outside beat is open above, one that beat nobody outside is open below,
    and one with both is open on both sides. A piece with no decisive vote at all (only
    ties) bounds nothing.
    """
    high, low, group = open_sides_batch(n_systems, i, j, a[None], b[None], t[None])
    return OpenSides(high[0], low[0], group[0])


def open_sides_batch(
    n_systems: int,
    i: IntArray,
    j: IntArray,
    a: FloatArray,
    b: FloatArray,
    t: FloatArray,
    *,
    weight: FloatArray | None = None,
    decisive: BoolArray | None = None,
) -> tuple[BoolArray, BoolArray, IntArray]:
    """:func:`open_sides` for many tables at once (``a``, ``b``, ``t`` of shape
    (tables, rows)): one graph search over their disjoint union. Returns (tables,
    systems) arrays: open above, open below, strong group.

    For a condensed graph (nodes standing for groups of systems), ``weight`` adds each
    node's own votes when the largest piece is chosen, and ``decisive`` says per table
    whether any vote at all was decisive (the rows given may not hold them all)."""
    size, m = a.shape[0], n_systems
    offset = (np.arange(size) * m)[:, None]
    nodes = size * m
    played = (a + b + t) > 0
    u, v = (i + offset)[played], (j + offset)[played]
    graph = coo_matrix((np.ones(u.size), (u, v)), shape=(nodes, nodes))
    _, piece = connected_components(graph, directed=False)
    # The main piece of each table: the one holding the most votes.
    weight_of = np.bincount(piece[u], weights=(a + b + t)[played], minlength=piece.max() + 1)
    if weight is not None:
        weight_of += np.bincount(piece, weights=np.tile(weight, size), minlength=piece.max() + 1)
    table_of_piece = np.zeros(piece.max() + 1, dtype=np.int64)
    table_of_piece[piece] = np.arange(nodes) // m
    best = np.full(size, -1.0)
    np.maximum.at(best, table_of_piece, weight_of)
    is_main_piece = weight_of >= best[table_of_piece]
    # Ties of weight: keep the piece with the lowest label per table.
    main_label = np.full(size, piece.max() + 1)
    candidates = np.flatnonzero(is_main_piece)
    np.minimum.at(main_label, table_of_piece[candidates], candidates)
    main = (piece == main_label[np.arange(nodes) // m]).reshape(size, m)
    high, low = ~main, ~main
    beat, lost = (a > 0) | (t > 0), (b > 0) | (t > 0)
    winner = np.concatenate([(i + offset)[beat], (j + offset)[lost]])
    loser = np.concatenate([(j + offset)[beat], (i + offset)[lost]])
    graph = coo_matrix((np.ones(winner.size), (winner, loser)), shape=(nodes, nodes))
    n_groups, group = connected_components(graph, directed=True, connection="strong")
    across = group[winner] != group[loser]
    beaten = np.zeros(n_groups, dtype=bool)  # someone outside the group beat it
    beats = np.zeros(n_groups, dtype=bool)  # it beat someone outside
    beaten[group[loser[across]]] = True
    beats[group[winner[across]]] = True
    # Only edges inside the main piece matter there; edges of cut-off pieces are opened
    # anyway. A table's main piece is separated when it holds more than one group.
    group = group.reshape(size, m)
    first_group = np.where(main, group, -1).max(axis=1)
    separated = (np.where(main, group, first_group[:, None]) != first_group[:, None]).any(axis=1)
    sink = (beaten & ~beats)[group]
    source = (beats & ~beaten)[group]
    high |= main & separated[:, None] & ~sink
    low |= main & separated[:, None] & ~source
    ties_only = ~decisive if decisive is not None else (a + b).sum(axis=1) == 0
    high[ties_only] = low[ties_only] = True
    return high, low, group


def effective_raters(rater: IntArray) -> float | None:
    """Kish's effective number of raters, (Σ nᵣ)² / Σ nᵣ², over votes with a known rater
    (None when none is known). Ten raters of whom one cast 91 % of the votes count as
    about 1.2.

    References
    ----------
    Kish (1965), Survey Sampling, section 11.7.
    """
    known = rater[rater >= 0]
    if known.size == 0:
        return None
    per_rater = np.bincount(known).astype(np.float64)
    per_rater = per_rater[per_rater > 0]
    return float(per_rater.sum() ** 2 / (per_rater**2).sum())
