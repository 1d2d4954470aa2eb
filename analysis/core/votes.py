"""Votes as arrays: the input of every analysis, from a database or a battle log."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from analysis.core.counts import PairCounts, count_pairs, fold_pairs
from analysis.core.types import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class Label:
    """A categorical label per vote (criterion, prompt category, rater source)."""

    codes: IntArray
    values: tuple[str, ...]


@dataclass(frozen=True)
class VoteTable:
    """One entry per vote. ``first``/``second`` index ``systems``; when ``position_known``
    ``first`` was shown on the left. ``outcome`` holds :class:`Outcome` codes relative to
    ``first``; ``rater`` indexes ``raters`` (-1: unknown); ``unit`` identifies what was
    judged (for agreement and repeats; -1: unknown); ``response_ms`` is NaN where unknown.
    """

    systems: tuple[str, ...]
    first: IntArray
    second: IntArray
    outcome: IntArray
    rater: IntArray
    raters: tuple[str, ...]
    position_known: bool
    unit: IntArray
    response_ms: FloatArray
    labels: Mapping[str, Label] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.first.size
        for name in ("second", "outcome", "rater", "unit", "response_ms"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have one entry per vote ({n})")
        for name, label in self.labels.items():
            if label.codes.shape != (n,):
                raise ValueError(f"label {name!r} must have one entry per vote ({n})")

    @property
    def n_votes(self) -> int:
        return int(self.first.size)

    def select(self, mask: BoolArray) -> "VoteTable":
        """The votes where ``mask`` holds (systems and raters keep their indices)."""
        return VoteTable(
            systems=self.systems,
            first=self.first[mask],
            second=self.second[mask],
            outcome=self.outcome[mask],
            rater=self.rater[mask],
            raters=self.raters,
            position_known=self.position_known,
            unit=self.unit[mask],
            response_ms=self.response_ms[mask],
            labels={k: Label(v.codes[mask], v.values) for k, v in self.labels.items()},
        )

    def restrict(self, members: IntArray) -> "VoteTable":
        """The votes among the systems ``members`` (indices into ``systems``), with the
        systems renumbered 0..k-1 in that order."""
        members = np.asarray(members, dtype=np.int64)
        code = np.full(len(self.systems), -1, dtype=np.int64)
        code[members] = np.arange(members.size)
        keep = (code[self.first] >= 0) & (code[self.second] >= 0)
        part = self.select(keep)
        return VoteTable(
            systems=tuple(self.systems[k] for k in members.tolist()),
            first=code[part.first],
            second=code[part.second],
            outcome=part.outcome,
            rater=part.rater,
            raters=self.raters,
            position_known=self.position_known,
            unit=part.unit,
            response_ms=part.response_ms,
            labels=part.labels,
        )

    def counts(self, *, ordered: bool) -> PairCounts:
        return count_pairs(
            self.first, self.second, self.outcome, n_systems=len(self.systems), ordered=ordered
        )


def make_vote_table(
    *,
    systems: tuple[str, ...],
    first: IntArray,
    second: IntArray,
    outcome: IntArray,
    position_known: bool,
    rater: IntArray | None = None,
    raters: tuple[str, ...] = (),
    unit: IntArray | None = None,
    response_ms: FloatArray | None = None,
    labels: Mapping[str, Label] | None = None,
) -> VoteTable:
    """A VoteTable with the optional columns filled with "unknown"."""
    n = np.asarray(first).size
    return VoteTable(
        systems=systems,
        first=np.asarray(first, dtype=np.int64),
        second=np.asarray(second, dtype=np.int64),
        outcome=np.asarray(outcome, dtype=np.int64),
        rater=np.full(n, -1, dtype=np.int64)
        if rater is None
        else np.asarray(rater, dtype=np.int64),
        raters=raters,
        position_known=position_known,
        unit=np.full(n, -1, dtype=np.int64) if unit is None else np.asarray(unit, dtype=np.int64),
        response_ms=np.full(n, np.nan)
        if response_ms is None
        else np.asarray(response_ms, dtype=np.float64),
        labels=dict(labels or {}),
    )


def pair_units(item: IntArray, first: IntArray, second: IntArray, n_systems: int) -> IntArray:
    """What raters agree or disagree on: an item (a prompt) together with its unordered
    pair of systems; -1 where the item is unknown."""
    item = np.asarray(item, dtype=np.int64)
    low, high = np.minimum(first, second), np.maximum(first, second)
    m = max(n_systems, 1)
    return np.where(item >= 0, (item * m + low) * m + high, -1).astype(np.int64)


def canonical_answer(table: VoteTable) -> tuple[IntArray, IntArray, IntArray]:
    """Each vote as (lower system, higher system, answer relative to the lower one)."""
    return fold_pairs(table.first, table.second, table.outcome)
