"""Stopping a criterion once its ranking is settled (Study.stop_when_settled).

After votes, the background refresh of the reports (analysis.reports.refresh_reports)
asks here whether each criterion still served is settled, from its stored report, which
it builds first where missing or stale; analysis.core.planning.settlement decides, at a
level stricter than the report's because the question is asked again after every batch
of votes. Settled criteria go to studies.assignments.settle_criteria, which takes their
comparisons out of the pool. With all criteria on one screen, a screen asks them all, so
serving stops only when every one is settled.
"""

from dataclasses import dataclass

from analysis.core.planning import Settlement, settlement
from analysis.reports import ReportOptions, build_report, read_report
from studies import assignments
from studies.models import Criterion, Study, StudyStatus


@dataclass(frozen=True)
class StoppingCheck:
    settled: tuple[str, ...]  # criteria whose serving stopped now
    waiting: dict[str, str]  # criterion: why it is not settled yet


def _settlement(study: Study, criterion: Criterion) -> tuple[Settlement, int]:
    options = ReportOptions(criterion=criterion.key)
    state = read_report(study=study, options=options)
    if state.analysis is None or state.stale:
        build_report(study=study, options=options)
        state = read_report(study=study, options=options)
    if state.analysis is None:
        why = state.report.message if state.report is not None else ""
        return Settlement(False, why.rstrip(".") or "no analysis of the votes yet"), 0
    board = state.analysis.leaderboard
    return settlement(board), board.n_votes


def check_stopping(*, study: Study) -> StoppingCheck:
    """Stop serving each settled criterion of a live study that asks for it. A
    real-or-generated study is never stopped here: settling reads a pairwise ranking."""
    if not study.stop_when_settled or study.status != StudyStatus.LIVE or study.is_realness:
        return StoppingCheck((), {})
    open_criteria = list(study.criteria.filter(settled_at__isnull=True).order_by("order", "pk"))
    decided = {c: _settlement(study, c) for c in open_criteria}
    waiting = {c.key: s.reason for c, (s, _) in decided.items() if not s.settled}
    ready = {c: votes for c, (s, votes) in decided.items() if s.settled}
    if study.criteria_on_one_screen and waiting:
        ready = {}
    assignments.settle_criteria(study=study, votes={c.pk: votes for c, votes in ready.items()})
    return StoppingCheck(tuple(c.key for c in ready), waiting)
