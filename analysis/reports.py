"""The study's analysis as one typed, stored report.

``build_report`` runs the analysis core on a study's votes and stores the result with its
options, the hash of the votes it used, the last vote id it saw, the software version and
the build time. Pages and the API only read stored reports (``read_report``); a new vote
makes a report stale, and a debounced background task rebuilds it
(``schedule_refresh``). Nothing here runs on the rater's path but that enqueueing.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from analysis.core.correlation import (
    HumanReplicates,
    MetricComparison,
    compare_metric,
    human_replicates,
)
from analysis.core.item_agreement import (
    ItemAgreement,
    ItemCorrelation,
    asset_win_rates,
    item_agreement,
    item_correlation,
)
from analysis.core.leaderboard import leaderboard, rater_agreement
from analysis.core.quality import QualityThresholds, exclude_flagged, rater_quality
from analysis.core.results import AgreementSummary, Leaderboard, LeaderboardOptions
from analysis.core.serialize import from_json, to_json
from analysis.core.votes import VoteTable
from analysis.loaders import StudyMetrics, metrics_stamp, study_metrics, study_votes
from analysis.models import ReportStatus, StudyReport
from analysis.readiness import Example, Readiness, StudySummary, examples, readiness, summary
from studies import webhooks
from studies.debounce import first_in_window
from studies.models import Asset, Assignment, Flag, FlagReason, Study, Vote, WebhookEvent

if TYPE_CHECKING:  # analysis.realness_report imports this module
    from analysis.realness_report import RealnessAnalysis

# Random rater splits for split-half reliability (each costs two small fits).
SPLITS = 20


class NoVotes(ValueError):
    """Nothing to rank yet."""


@dataclass(frozen=True)
class ReportOptions:
    """What a report analyses: one criterion (its key; None: all votes), whether
    simulated raters count, whether flagged raters are left out, bootstrap size."""

    criterion: str | None
    include_simulated: bool = True
    exclude_flagged: bool = False
    replicates: int = 1000

    @property
    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class FlaggedRater:
    rater_id: int
    votes: int
    flags: tuple[str, ...]


@dataclass(frozen=True)
class MediaFlags:
    """A system's outputs that raters flagged (never silently dropped: counted here)."""

    system: str
    outputs: int
    flagged: int  # distinct outputs with a flag
    withheld: int  # of those, still withheld (awaiting review or kept)
    broken: int  # flags by reason
    disturbing: int
    unjudgeable: int


@dataclass(frozen=True)
class MetricAbout:
    """What a reader needs beside a metric's correlation: its per-system values with
    their intervals over images, and its caveats (extractor, small sets)."""

    name: str
    lower_is_better: bool
    systems: tuple[str, ...]
    values: tuple[float, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    n_fake: tuple[int | None, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ItemMetric:
    """A per-asset measure against the votes: pairwise prediction beside the human
    ceiling, and the rank correlation with per-asset win rates."""

    agreement: ItemAgreement
    correlation: ItemCorrelation | None


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the study's report shows for one set of options. The exported
    reports extend this object."""

    study: str
    criterion: str | None
    question: str | None
    leaderboard: Leaderboard
    agreement: AgreementSummary
    raters_judged: int
    flagged_raters: tuple[FlaggedRater, ...]
    simulated_votes: int
    simulated_included: bool
    excluded_raters: int
    excluded_votes: int
    media_flags: tuple[MediaFlags, ...] = ()
    metrics: tuple[MetricComparison, ...] = ()
    metric_values: tuple[MetricAbout, ...] = ()
    item_metrics: tuple[ItemMetric, ...] = ()
    metric_problems: tuple[str, ...] = ()  # metrics that could not be set beside people
    summary: StudySummary | None = None
    readiness: Readiness | None = None
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class ReportState:
    """A stored report as a page reads it: ``analysis`` (a pairwise study's) or
    ``realness`` (a real-or-generated study's) is None until one is built;
    ``new_votes`` counts votes cast since (0: fresh)."""

    report: StudyReport | None
    analysis: StudyAnalysis | None
    new_votes: int
    metrics_changed: bool = False
    realness: "RealnessAnalysis | None" = None

    @property
    def stale(self) -> bool:
        return self.new_votes > 0 or self.metrics_changed


def metrics_digest(metrics: StudyMetrics) -> "hashlib._Hash":
    """A digest started with the system-level metric values an analysis used."""
    digest = hashlib.sha256()
    for system_metric in metrics.systems:
        digest.update(
            json.dumps([system_metric.name, sorted(system_metric.values.items())]).encode()
        )
    return digest


def _data_hash(table: VoteTable, metrics: StudyMetrics) -> str:
    """A hash of the votes and the metric values an analysis used."""
    digest = metrics_digest(metrics)
    for asset_metric in metrics.assets:
        digest.update(json.dumps([asset_metric.name, sorted(asset_metric.values.items())]).encode())
    for column in (table.first, table.second, table.outcome, table.rater):
        digest.update(np.ascontiguousarray(column).tobytes())
    digest.update("\n".join(table.systems).encode())
    return digest.hexdigest()[:16]


def last_vote_id(*, study: Study) -> int:
    """The highest vote id of the study: every new vote (a correction too) raises it."""
    return int(Vote.objects.filter(assignment__study=study).aggregate(top=Max("pk"))["top"] or 0)


def media_flags(*, study: Study) -> tuple[MediaFlags, ...]:
    """Per system, the outputs raters flagged as broken, disturbing or impossible to judge."""
    rows = []
    for system in study.systems.order_by("pk"):
        outputs = Asset.objects.outputs().filter(system=system)
        flagged = outputs.filter(flags__isnull=False).distinct()
        reasons = Flag.objects.filter(assets__in=outputs).values_list("reason", flat=True)
        counted = {reason: 0 for reason in FlagReason.values}
        for reason in reasons:
            counted[reason] += 1
        rows.append(
            MediaFlags(
                system=system.name,
                outputs=outputs.count(),
                flagged=flagged.count(),
                withheld=flagged.filter(withheld=True).count(),
                broken=counted[FlagReason.BROKEN],
                disturbing=counted[FlagReason.DISTURBING],
                unjudgeable=counted[FlagReason.UNJUDGEABLE],
            )
        )
    return tuple(rows)


def metric_about(metrics: StudyMetrics) -> tuple[MetricAbout, ...]:
    out = []
    for m in metrics.systems:
        systems = tuple(sorted(m.values))
        out.append(
            MetricAbout(
                name=m.name,
                lower_is_better=m.lower_is_better,
                systems=systems,
                values=tuple(m.values[s] for s in systems),
                low=tuple(m.low.get(s) for s in systems),
                high=tuple(m.high.get(s) for s in systems),
                n_fake=tuple(m.n_fake.get(s) for s in systems),
                notes=m.notes,
            )
        )
    return tuple(out)


def _paired(reps: HumanReplicates, count: int) -> HumanReplicates:
    """The first ``count`` human replicates, to pair one by one with a metric's."""
    return HumanReplicates(reps.systems, reps.scores, reps.samples[:count], reps.by)


def _system_comparisons(
    table: VoteTable,
    board: Leaderboard,
    metrics: StudyMetrics,
    criterion: str | None,
    reps: HumanReplicates | None,
    why_none: str,
) -> tuple[list[MetricComparison], list[str]]:
    """Each system-level metric beside the leaderboard, and why any could not be."""
    if not metrics.systems:
        return [], []
    if reps is None:
        return [], [f"System-level metrics: {why_none}."]
    comparisons, problems = [], []
    for metric in metrics.systems:
        samples, paired = None, reps
        if metric.samples is not None:
            count = min(len(next(iter(metric.samples.values()))), reps.samples.shape[0])
            samples = {s: v[:count] for s, v in metric.samples.items()}
            paired = _paired(reps, count)
        try:
            comparisons.append(
                compare_metric(
                    table, board, metric.values, name=metric.name,
                    lower_is_better=metric.lower_is_better, criterion=criterion,
                    metric_samples=samples, replicates=paired,
                )
            )  # fmt: skip
        except ValueError as exc:
            problems.append(f"{metric.name}: {exc}")
    return comparisons, problems


def _item_metrics(table: VoteTable, metrics: StudyMetrics) -> list[ItemMetric]:
    """Each per-asset measure against the votes on the assets it measured."""
    if not metrics.assets or table.n_votes == 0:
        return []
    left, right = table.labels["left_asset"], table.labels["right_asset"]
    shown = np.concatenate(
        [
            np.array(left.values, dtype=np.int64)[left.codes],
            np.array(right.values, dtype=np.int64)[right.codes],
        ]
    )
    # Assets renumbered 0..k-1: the item functions index their measure arrays by asset.
    ids, code = np.unique(shown, return_inverse=True)
    first, second = code[: table.n_votes], code[table.n_votes :]
    rate, _ = asset_win_rates(first, second, table.outcome, ids.size)
    items = []
    for measure in metrics.assets:
        values = np.array([measure.values.get(int(a), np.nan) for a in ids])
        name, lower = measure.name, measure.lower_is_better
        agreement = item_agreement(
            first, second, table.outcome, values, name=name, lower_is_better=lower
        )
        correlation = None
        if np.isfinite(values).sum() >= 3:
            correlation = item_correlation(rate, values, name=name, lower_is_better=lower)
        items.append(ItemMetric(agreement, correlation))
    return items


def analyse_study(*, study: Study, options: ReportOptions) -> tuple[StudyAnalysis, str, int]:
    """The analysis of the study's current votes and metric values, the hash of the data
    it used and how many votes. Raises NoVotes when nothing is left to rank."""
    loaded = study_votes(study=study)
    metrics = study_metrics(study=study)
    table = loaded.table
    judged = table if options.include_simulated else table.select(~loaded.simulated)
    # Raters are judged on all their votes in the study, not one criterion's share.
    quality = rater_quality(
        judged,
        check_rater=loaded.check_rater,
        check_passed=loaded.check_passed,
        thresholds=QualityThresholds(max_failed_checks=study.max_failed_attention_checks),
    )
    in_criterion = np.ones(table.n_votes, dtype=bool)
    question = None
    if options.criterion is not None:
        label = table.labels["criterion"]
        code = label.values.index(options.criterion) if options.criterion in label.values else -1
        in_criterion = label.codes == code
        question = (
            study.criteria.filter(key=options.criterion).values_list("question", flat=True).first()
        )
    keep = in_criterion if options.include_simulated else in_criterion & ~loaded.simulated
    table = table.select(keep)
    excluded_raters = excluded_votes = 0
    if options.exclude_flagged:
        cut = exclude_flagged(table, quality)
        table, excluded_raters, excluded_votes = cut.votes, cut.excluded_raters, cut.excluded_votes
    if table.n_votes == 0:
        raise NoVotes(
            "No votes to rank yet" + (" (after the exclusions)" if excluded_votes else "") + "."
        )
    board = leaderboard(
        table,
        LeaderboardOptions(
            replicates=options.replicates,
            breakdowns=("category", "source"),
            min_votes=settings.VERDICT_PRELIMINARY_VOTES,
        ),
    )
    try:
        reps: HumanReplicates | None = human_replicates(table, board)
        why_none = ""
    except ValueError as exc:
        reps, why_none = None, str(exc)
    comparisons, problems = _system_comparisons(
        table, board, metrics, options.criterion, reps, why_none
    )
    analysis = StudyAnalysis(
        study=study.slug,
        criterion=options.criterion,
        question=question,
        leaderboard=board,
        agreement=rater_agreement(table, splits=SPLITS),
        raters_judged=len(quality),
        flagged_raters=tuple(
            FlaggedRater(loaded.rater_ids[q.rater], q.votes, q.flags) for q in quality if q.flags
        ),
        simulated_votes=int((loaded.simulated & in_criterion).sum()),
        simulated_included=options.include_simulated,
        excluded_raters=excluded_raters,
        excluded_votes=excluded_votes,
        media_flags=media_flags(study=study),
        metrics=tuple(comparisons),
        metric_values=metric_about(metrics),
        item_metrics=tuple(_item_metrics(table, metrics)),
        metric_problems=tuple(problems),
        summary=summary(
            study=study, board=board, check_passed=loaded.check_passed, criterion=options.criterion
        ),
        readiness=readiness(study=study, table=table, board=board, replicates=reps),
        examples=examples(study=study, comparisons=comparisons, criterion=options.criterion),
    )
    return analysis, _data_hash(table, metrics), table.n_votes


def build_report(*, study: Study, options: ReportOptions) -> StudyReport:
    """Analyse the study's votes now and store the result (creating or replacing the
    report for these options)."""
    seen = last_vote_id(study=study)
    stamp = metrics_stamp(study=study)
    started = time.perf_counter()
    fields: dict[str, object] = {
        "last_vote_id": seen,
        "metrics_stamp": stamp,
        "options": asdict(options),
    }
    body: StudyAnalysis | RealnessAnalysis
    try:
        if study.is_realness:
            from analysis.realness_report import analyse_realness  # it imports this module

            body, data_hash, used = analyse_realness(study=study, options=options)
        else:
            body, data_hash, used = analyse_study(study=study, options=options)
    except NoVotes as exc:
        fields.update(status=ReportStatus.EMPTY, body=None, message=str(exc), votes_used=0)
        fields.update(data_hash="")
    except ValueError as exc:  # data the analysis refuses, said plainly on the page
        fields.update(status=ReportStatus.FAILED, body=None, message=str(exc), votes_used=0)
        fields.update(data_hash="")
    else:
        fields.update(
            status=ReportStatus.READY,
            body=to_json(body),
            message="",
            data_hash=data_hash,
            votes_used=used,
        )
    fields.update(
        software=f"verdict {version('verdict')}",
        built_at=timezone.now(),
        build_seconds=time.perf_counter() - started,
    )
    report, _ = StudyReport.objects.update_or_create(study=study, key=options.key, defaults=fields)
    webhooks.emit(
        study=study,
        event=WebhookEvent.REPORT_REBUILT,
        key=f"report:{report.key}:{seen}:{stamp}",
        data={"criterion": options.criterion, "status": report.status, "votes": report.votes_used},
    )
    return report


def _votes_since(*, study: Study, vote_id: int) -> int:
    """How many of the study's votes came after ``vote_id``. From the newest votes down,
    each checked for its study: a join from the study's side reads all its votes (a third
    of a second at a million, on every page view)."""
    of_study = Assignment.objects.filter(pk=OuterRef("assignment_id"), study=study)
    return Vote.objects.filter(pk__gt=vote_id).filter(Exists(of_study)).count()


def read_report(*, study: Study, options: ReportOptions) -> ReportState:
    """The stored report for these options, rebuilt into its typed form; never fits."""
    report = StudyReport.objects.filter(study=study, key=options.key).first()
    if report is None:
        return ReportState(None, None, 0)
    from analysis.realness_report import RealnessAnalysis  # it imports this module

    analysis: StudyAnalysis | None = None
    realness: RealnessAnalysis | None = None
    if report.status == ReportStatus.READY and report.body is not None:
        if study.is_realness:
            realness = from_json(RealnessAnalysis, report.body)
        else:
            analysis = from_json(StudyAnalysis, report.body)
    newer = _votes_since(study=study, vote_id=report.last_vote_id)
    changed = report.metrics_stamp != metrics_stamp(study=study)
    return ReportState(report, analysis, newer, changed, realness)


def request_build(*, study: Study, options: ReportOptions) -> None:
    """Build the report for these options in the background, once per debounce window."""
    from analysis import tasks  # tasks import this module

    if cache.add(f"verdict:report:{study.pk}:{options.key}", 1, settings.VERDICT_REPORT_DEBOUNCE):
        tasks.build_report.delay(study_id=study.pk, options=asdict(options))


def schedule_refresh(*, study_id: int) -> None:
    """After new votes: rebuild the study's stale reports once the votes settle (one
    task per debounce window, however many votes arrive in it)."""
    from analysis import tasks

    debounce = settings.VERDICT_REPORT_DEBOUNCE
    if first_in_window(f"verdict:refresh:{study_id}", debounce):
        tasks.refresh_reports.apply_async(kwargs={"study_id": study_id}, countdown=debounce)


def refresh_reports(*, study: Study) -> int:
    """Rebuild every stored report of the study that a newer vote or a changed metric
    value made stale, then stop serving the criteria now settled where the study asks
    for it (analysis.stopping); returns how many reports were rebuilt."""
    from analysis.stopping import check_stopping  # it builds reports with this module

    seen = last_vote_id(study=study)
    stamp = metrics_stamp(study=study)
    rebuilt = 0
    reports = StudyReport.objects.for_study(study)
    for report in reports.filter(Q(last_vote_id__lt=seen) | ~Q(metrics_stamp=stamp)):
        build_report(study=study, options=ReportOptions(**report.options))
        rebuilt += 1
    check_stopping(study=study)
    counted = Study.objects.with_progress().filter(pk=study.pk)
    progress = counted.values("n_votes", "vote_target").get()  # type: ignore[misc]
    if progress["vote_target"] and progress["n_votes"] >= progress["vote_target"]:
        webhooks.emit(
            study=study,
            event=WebhookEvent.VOTE_TARGET_REACHED,
            key="vote_target_reached",
            data={"votes": progress["n_votes"], "target": progress["vote_target"]},
        )
    return rebuilt
