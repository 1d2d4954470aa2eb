"""A study's size before launch (the admin's Plan page) and, during it, which adjacent
systems are already told apart (a panel on the study page). The simulation and the
reading of a leaderboard are analysis.core.planning's; here: the study's design, its
stored report and its pay."""

import math
import time
from dataclasses import dataclass
from decimal import Decimal

from django import forms

from analysis.core.planning import (
    MAX_VOTES,
    STOP_LEVEL,
    STOP_MIN_VOTES,
    PairSeparation,
    plan_votes,
    separation,
    settlement,
)
from analysis.core.results import Leaderboard
from analysis.core.simulate import PowerAnalysis
from analysis.reports import ReportOptions, last_vote_id, read_report
from studies.models import Study, StudyStatus

# Where the stopping signal is shown: the study has (or had) raters voting.
WITH_VOTES = (StudyStatus.LIVE, StudyStatus.PAUSED, StudyStatus.CLOSED)


class PlanForm(forms.Form):
    gaps = forms.CharField(
        label="Expected gaps (Elo)",
        help_text="Between adjacent systems, best to worst: one number for every gap, or "
        "one per gap separated by commas.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 50 or 80, 40, 40"}),
    )
    power = forms.FloatField(
        initial=0.8, help_text="Share of such studies that separate every adjacent pair."
    )
    level = forms.FloatField(initial=0.95, help_text="Confidence level of the intervals.")

    def __init__(self, *args: object, systems: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.systems = systems

    def clean_gaps(self) -> list[float]:
        text = self.cleaned_data["gaps"]
        try:
            gaps = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Give numbers of Elo points, e.g. 50 or 80, 40.") from None
        if not gaps or not all(math.isfinite(g) and g > 0 for g in gaps):
            raise forms.ValidationError("Every gap must be a positive number of Elo points.")
        wanted = self.systems - 1
        if len(gaps) == 1:
            return gaps * wanted
        if len(gaps) != wanted:
            raise forms.ValidationError(
                f"{self.systems} systems have {wanted} adjacent gaps: give one number, "
                f"or {wanted} numbers."
            )
        return gaps

    def _within_zero_one(self, name: str) -> float:
        value: float = self.cleaned_data[name]
        if not 0 < value < 1:
            raise forms.ValidationError("Give a number between 0 and 1, e.g. 0.8.")
        return value

    def clean_power(self) -> float:
        return self._within_zero_one("power")

    def clean_level(self) -> float:
        return self._within_zero_one("level")


@dataclass(frozen=True)
class FittedGaps:
    """The adjacent gaps of the first criterion's stored leaderboard."""

    gaps: tuple[float, ...]
    order: tuple[str, ...]
    votes: int
    tie_strength: float | None


def _first_leaderboard(study: Study) -> tuple[str, Leaderboard | None]:
    criterion = study.criteria.order_by("order", "pk").first()
    if criterion is None:
        return "", None
    state = read_report(study=study, options=ReportOptions(criterion=criterion.key))
    return criterion.key, state.analysis.leaderboard if state.analysis else None


def fitted_gaps(*, study: Study) -> FittedGaps | None:
    """The gaps the votes so far (a pilot's, or the study's) show, from the stored report
    of the first criterion; None without one, or with fewer than two systems ranked
    together."""
    _, board = _first_leaderboard(study)
    if board is None or not board.components:
        return None
    first = board.components[0].index
    ranked = [(r.system, r.elo) for r in board.rows if r.component == first and r.elo is not None]
    if len(ranked) < 2:
        return None
    elo = [value for _, value in ranked]
    # Whole Elo points, 1 at least: a zero gap would never separate.
    gaps = tuple(max(1.0, float(round(a - b))) for a, b in zip(elo[:-1], elo[1:], strict=True))
    order = tuple(name for name, _ in ranked)
    return FittedGaps(gaps, order, board.n_votes, board.tie_strength)


@dataclass(frozen=True)
class StudyPlan:
    """What a study of this design needs for the gaps. ``votes_needed`` is per criterion
    (None: more than ``max_votes``); a session gives ``votes_per_session`` of them."""

    gaps: tuple[float, ...]
    analysis: PowerAnalysis
    criteria: int
    votes_per_session: int
    tie_strength: float
    max_votes: int
    seconds: float
    raters: int | None
    cost: Decimal | None
    currency: str

    @property
    def votes_needed(self) -> int | None:
        return self.analysis.votes_needed

    @property
    def total_votes(self) -> int | None:
        return None if self.votes_needed is None else self.votes_needed * self.criteria

    def rows(self) -> list[tuple[int, float, list[float]]]:
        """The power curve: (votes per criterion, power for all pairs, per pair)."""
        return [(p.votes, p.power, list(p.per_pair)) for p in self.analysis.curve]


def votes_per_session(*, study: Study) -> tuple[int, int]:
    """(criteria, one session's comparison votes for each criterion): with every criterion
    on one screen each comparison answers all of them; otherwise a session's
    comparisons are shared among them."""
    criteria = max(1, study.criteria.count())
    if study.criteria_on_one_screen:
        return criteria, study.comparisons_per_session
    return criteria, max(1, study.comparisons_per_session // criteria)


def plan_study(
    *, study: Study, gaps: list[float], target: float, level: float, tie_strength: float = 0.0
) -> StudyPlan:
    """Votes, raters and cost to separate every adjacent pair of the study's systems."""
    criteria, per_session = votes_per_session(study=study)
    started = time.perf_counter()
    analysis = plan_votes(
        gaps, votes_per_rater=per_session, target=target, level=level, tie_strength=tie_strength
    )
    seconds = time.perf_counter() - started
    raters = cost = None
    if analysis.votes_needed is not None:
        raters = math.ceil(analysis.votes_needed / per_session)
        if study.reward_per_session is not None:
            cost = study.reward_per_session * raters
    return StudyPlan(
        gaps=tuple(gaps),
        analysis=analysis,
        criteria=criteria,
        votes_per_session=per_session,
        tie_strength=tie_strength,
        max_votes=MAX_VOTES,
        seconds=seconds,
        raters=raters,
        cost=cost,
        currency=study.currency,
    )


def _pair_line(criterion: str, pair: PairSeparation) -> str:
    head = f"{criterion}: {pair.higher} over {pair.lower} ({pair.gap_elo:.0f} Elo)"
    if pair.separated:
        return f"{head}: separated."
    if pair.further_votes is not None:
        votes = f"{pair.further_votes} more vote{'s' if pair.further_votes != 1 else ''}"
        return f"{head}: not yet; about {votes} if the gap holds."
    return f"{head}: {pair.reason}."


def separation_panel(*, study: Study) -> tuple[str, list[str]] | None:
    """The study page's stopping signal, per criterion, from its stored report (never
    fitted here); None before the study goes live."""
    if study.status not in WITH_VOTES:
        return None
    title = "Stopping signal: adjacent systems told apart"
    if last_vote_id(study=study) == 0:
        return title, ["No votes yet: nothing to tell apart."]
    lines = []
    if study.stop_when_settled:
        lines.append(
            f"Serving stops per criterion once its ranking is settled: every adjacent pair "
            f"apart at {STOP_LEVEL:.1%} (stricter than the report's level, since the check "
            f"repeats as votes arrive) and every system with {STOP_MIN_VOTES} votes or more."
        )
    criteria = list(study.criteria.order_by("order", "pk"))
    for criterion in criteria:
        if criterion.settled_at is not None:
            lines.append(
                f"{criterion.key}: settled on {criterion.settled_at:%Y-%m-%d %H:%M} UTC after "
                f"{criterion.settled_votes} votes; its pairs are no longer served. A study "
                "stopped on clear gaps reports slightly narrower intervals than a fixed "
                "number of votes would (optional stopping)."
            )
        state = read_report(study=study, options=ReportOptions(criterion=criterion.key))
        if state.analysis is None:
            why = state.report.message if state.report and state.report.message else ""
            lines.append(
                f"{criterion.key}: no analysis of the votes yet"
                + (f" ({why.rstrip('.')})" if why else "; opening the leaderboard builds one")
                + "."
            )
            continue
        board = state.analysis.leaderboard
        pairs = separation(board)
        done = sum(bool(p.separated) for p in pairs)
        newer = f"; {state.new_votes} newer votes not in it yet" if state.new_votes else ""
        lines.append(
            f"{criterion.key}: {done} of {len(pairs)} adjacent pairs separated at "
            f"{board.options.level:.0%}, from {board.n_votes} votes{newer}."
        )
        lines.extend(_pair_line(criterion.key, pair) for pair in pairs)
        if study.stop_when_settled and criterion.settled_at is None:
            lines.append(f"{criterion.key}: still served: {settlement(board).reason}.")
    if any(" more vote" in line for line in lines):
        lines.append(
            "More votes: where the interval of the difference would just exclude 0 if the "
            "gap stays as measured (its width shrinking as 1/√votes, the votes spread as so "
            "far): an even chance, not a promise."
        )
    return title, lines
