"""A rater's session summed up: what a request needs of the screens it does not read.

Serving and progress need, of the rater's answered screens, how many there are of each
kind and, for variety, which prompts the comparisons used. Read from the pairs, that cost
grew with the session (a scan of every pair on every vote: the largest statement of the
vote path at 200 pairs). The tally is kept on the rater's row instead, written with the
vote that changes it (studies.assignments.answer) and recomputed from the pairs where
answered screens leave (a discarded pilot); ``tally_of`` is that recomputation and the
reference the kept tally must equal (tests/unit/test_tally.py).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from studies.models import AssignmentKind, AssignmentStatus

# What ``tally_of`` reads of each pair, as values_list() names them.
TALLY_COLUMNS = ("pk", "kind", "status", "screen", "token", "prompt_id")


@dataclass(frozen=True)
class Tally:
    """The rater's answered screens: how many of each kind, how many comparisons used
    each prompt, and the last comparison in serving order as (first pair's id, prompt)."""

    screens: Mapping[str, int] = field(default_factory=dict)
    prompts: Mapping[int, int] = field(default_factory=dict)
    last: tuple[int, int] | None = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> "Tally":
        value = value or {}
        last = value.get("last")
        return cls(
            screens={str(kind): int(n) for kind, n in value.get("screens", {}).items()},
            prompts={int(prompt): int(n) for prompt, n in value.get("prompts", {}).items()},
            last=(int(last[0]), int(last[1])) if last else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "screens": dict(self.screens),
            "prompts": {str(prompt): n for prompt, n in self.prompts.items()},
            "last": list(self.last) if self.last else None,
        }

    def answered(self, kinds: Iterable[str]) -> int:
        return sum(self.screens.get(kind, 0) for kind in kinds)

    def with_screen(self, *, first_pk: int, kind: str, prompt_id: int) -> "Tally":
        """This tally with one more answered screen (its first pair's id, kind, prompt)."""
        screens = {**self.screens, kind: self.screens.get(kind, 0) + 1}
        if kind != AssignmentKind.COMPARISON:
            return Tally(screens=screens, prompts=self.prompts, last=self.last)
        prompts = {**self.prompts, prompt_id: self.prompts.get(prompt_id, 0) + 1}
        last = self.last if self.last and self.last[0] > first_pk else (first_pk, prompt_id)
        return Tally(screens=screens, prompts=prompts, last=last)


def tally_of(rows: Iterable[tuple[int, str, str, str, str, int]]) -> Tally:
    """The tally of a session from all its pairs, as (id, kind, status, screen, token,
    prompt id): a screen counts once, by its first pair."""
    tally = Tally()
    for pk, kind, status, screen, token, prompt_id in sorted(rows):
        if status == AssignmentStatus.ANSWERED and screen in ("", token):
            tally = tally.with_screen(first_pk=pk, kind=kind, prompt_id=prompt_id)
    return tally
