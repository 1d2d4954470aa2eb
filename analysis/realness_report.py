"""The analysis of a real-or-generated study, stored in the same StudyReport row as a
pairwise study's (analysis.reports dispatches here on ``Study.is_realness``).

A judgment is the current vote of an answered JUDGMENT assignment: one image shown (the
same asset on both sides), answered "real" or "generated". The loader turns them into
the arrays :func:`analysis.core.realness.realness` takes, once. The rater rules mirror
the pairwise report: simulated raters are left out unless the options include them, and
raters who failed more attention checks than the study allows are flagged and, with
``exclude_flagged``, left out. Beside people, each system-level metric is correlated
with the systems' fooled rates (higher = more realistic) by
:func:`analysis.core.correlation.correlate`.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.db.models import QuerySet

from analysis.core.correlation import SystemCorrelation, correlate
from analysis.core.realness import REAL, Realness, fooled_replicates, realness
from analysis.core.types import BoolArray, FloatArray, IntArray
from analysis.loaders import StudyMetrics, SystemMetric, study_metrics
from analysis.reports import (
    FlaggedRater,
    MetricAbout,
    NoVotes,
    ReportOptions,
    metric_about,
    metrics_digest,
)
from studies.assignments import passes
from studies.models import AssignmentKind, AssignmentStatus, Rater, RaterSource, Study, Vote

# The level of every interval of the realness report.
LEVEL = 0.95
# The real images' source label when a system happens to be named "real".
_REAL_FALLBACK = "(real images)"
# The flag of a rater who failed more attention checks than the study allows (the
# pairwise quality rules' name); "same_answer" comes from analysis.core.realness.
FAILED_CHECKS = "failed_checks"
# Seed of the rater bootstrap behind the correlations' intervals: a rebuild of the same
# data gives the same report.
_SEED = 0


@dataclass(frozen=True)
class StudyJudgments:
    """A realness study's current judgments as arrays (one entry per judgment), with the
    attention checks its raters answered (one entry per check)."""

    vote_id: IntArray
    rater_id: IntArray  # the rater's database id
    source: npt.NDArray[np.str_]  # the system's name, or ``real_source``
    answer: npt.NDArray[np.str_]  # "real" or "generated"
    exposure_ms: FloatArray  # np.inf: unlimited (stored as 0 or null)
    response_ms: FloatArray
    simulated: BoolArray  # cast by a simulated rater
    systems: tuple[str, ...]  # the generative systems, by pk
    real_source: str
    check_rater_id: IntArray
    check_passed: BoolArray
    simulated_raters: frozenset[int]

    @property
    def rater(self) -> npt.NDArray[np.str_]:
        """Each judgment's rater as the report names raters ("rater <id>")."""
        return rater_labels(self.rater_id)


@dataclass(frozen=True)
class RealnessAnalysis:
    """Everything a real-or-generated study's report shows for one set of options.

    ``realness`` holds the systems in the study's order (by pk) and the raters; the
    flagged raters carry "failed_checks" (more failed attention checks than
    ``max_failed_checks``) and the core's "same_answer"; only failed checks exclude a
    rater (with ``exclude_flagged``). ``metrics`` correlate each system metric with the
    fooled rates; ``metric_problems`` say why a metric could not be set beside them."""

    study: str
    criterion: str | None
    question: str | None
    realness: Realness
    raters_judged: int
    flagged_raters: tuple[FlaggedRater, ...]
    excluded_raters: int
    excluded_judgments: int
    simulated_judgments: int
    simulated_included: bool
    attention_checks: int
    attention_passed: int
    max_failed_checks: int
    exposure_ms: int  # the study's setting (0: until answered)
    real_share: float
    metrics: tuple[SystemCorrelation, ...] = ()
    metric_values: tuple[MetricAbout, ...] = ()
    metric_problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    study_type: str = "realness"


def rater_labels(rater_id: IntArray) -> npt.NDArray[np.str_]:
    """Rater labels as the report and its files name raters ("rater <id>")."""
    return np.array([f"rater {pk}" for pk in rater_id.tolist()], dtype=np.str_)


def judgment_votes(*, study: Study, criterion: str | None) -> QuerySet[Vote]:
    """The current votes of the study's answered judgments (one criterion's, or all)."""
    votes = Vote.objects.filter(
        assignment__study=study,
        assignment__kind=AssignmentKind.JUDGMENT,
        assignment__status=AssignmentStatus.ANSWERED,
        is_current=True,
    )
    if criterion is not None:
        votes = votes.filter(assignment__criterion__key=criterion)
    return votes


def real_source(systems: tuple[str, ...]) -> str:
    """The source label of the real images: "real", unless a system bears that name."""
    return REAL if REAL not in systems else _REAL_FALLBACK


def study_judgments(*, study: Study, criterion: str | None) -> StudyJudgments:
    """The study's current judgments (of ``criterion``, or all) as arrays, and every
    answered attention check of its raters (raters are judged on all their checks)."""
    rows = list(study.systems.order_by("pk").values_list("pk", "name", "is_real"))
    systems = tuple(name for _, name, real in rows if not real)
    real = real_source(systems)
    source_of = {pk: (real if is_real else name) for pk, name, is_real in rows}
    records = list(
        judgment_votes(study=study, criterion=criterion)
        .order_by("pk")
        .values_list(
            "pk",
            "assignment__rater_id",
            "assignment__left_asset__system_id",
            "answer",
            "assignment__exposure_ms",
            "response_ms",
        )
    )
    simulated_raters = frozenset(
        Rater.objects.filter(study=study, source=RaterSource.SIMULATED).values_list("pk", flat=True)
    )
    rater_id = np.array([r[1] for r in records], dtype=np.int64)
    checks = (
        Vote.objects.filter(
            assignment__study=study,
            assignment__kind=AssignmentKind.ATTENTION,
            assignment__status=AssignmentStatus.ANSWERED,
            is_current=True,
        )
        .select_related("assignment")
        .only(
            "answer",
            "assignment__rater_id",
            "assignment__expected_answer",
            "assignment__left_asset_id",
            "assignment__right_asset_id",
        )
        .order_by("pk")
    )
    check_rows = [(v.assignment.rater_id, passes(v.assignment, v.answer)) for v in checks]
    return StudyJudgments(
        vote_id=np.array([r[0] for r in records], dtype=np.int64),
        rater_id=rater_id,
        source=np.array([source_of[r[2]] for r in records], dtype=np.str_),
        answer=np.array([r[3] for r in records], dtype=np.str_),
        # 0 (and null on rows older than the field) mean "until answered".
        exposure_ms=np.array([r[4] or np.inf for r in records], dtype=np.float64),
        response_ms=np.array([r[5] for r in records], dtype=np.float64),
        simulated=np.isin(rater_id, list(simulated_raters)),
        systems=systems,
        real_source=real,
        check_rater_id=np.array([r for r, _ in check_rows], dtype=np.int64),
        check_passed=np.array([p for _, p in check_rows], dtype=bool),
        simulated_raters=simulated_raters,
    )


def failed_check_raters(
    check_rater_id: IntArray, check_passed: BoolArray, *, max_failed: int
) -> dict[int, int]:
    """Raters who failed more attention checks than ``max_failed``: id -> failures (the
    pairwise rule, analysis.core.quality's ``failed_checks``)."""
    failed = check_rater_id[~check_passed]
    ids, counts = np.unique(failed, return_counts=True)
    return {int(r): int(n) for r, n in zip(ids, counts, strict=True) if n > max_failed}


def _correlation(
    metric: SystemMetric,
    rates: dict[str, float],
    order: tuple[str, ...],
    samples: FloatArray | None,
    criterion: str | None,
) -> SystemCorrelation:
    """One metric against the fooled rates of the systems that have both."""
    systems = tuple(s for s in order if s in rates and s in metric.values)
    notes = []
    left_out = sorted((set(rates) | set(metric.values)) - set(systems))
    if left_out:
        notes.append(
            "Left out (no fooled rate, or no metric value; the real images are no system): "
            f"{', '.join(left_out)}."
        )
    human = np.array([rates[s] for s in systems], dtype=np.float64)
    values = np.array([metric.values[s] for s in systems], dtype=np.float64)
    columns = [order.index(s) for s in systems]
    human_samples = None if samples is None else samples[:, columns]
    metric_samples = None
    how = "no bootstrap (no rater judged generated images)"
    if human_samples is not None:
        how = f"bootstrap by rater ({human_samples.shape[0]} replicates), metric held fixed"
        if metric.samples is not None and all(s in metric.samples for s in systems):
            count = min(min(len(metric.samples[s]) for s in systems), human_samples.shape[0])
            if count >= 2:
                metric_samples = np.array(
                    [metric.samples[s][:count] for s in systems], dtype=np.float64
                ).T
                human_samples = human_samples[:count]
                how = (
                    f"bootstrap by rater ({count} replicates) paired with the metric's "
                    "replicates over images"
                )
    coefficients, p_method, small = correlate(
        human,
        values,
        lower_is_better=metric.lower_is_better,
        human_samples=human_samples,
        metric_samples=metric_samples,
        level=LEVEL,
        rng=_SEED,
    )
    sign = -1.0 if metric.lower_is_better else 1.0
    return SystemCorrelation(
        metric=metric.name,
        criterion=criterion,
        lower_is_better=metric.lower_is_better,
        systems=systems,
        human=tuple(float(v) for v in human),
        metric_values=tuple(float(v) for v in values),
        oriented=tuple(float(sign * v) for v in values),
        coefficients=coefficients,
        level=LEVEL,
        interval=how,
        p_method=p_method,
        notes=tuple(small + notes),
    )


def metric_correlations(
    result: Realness,
    metrics: StudyMetrics,
    samples: FloatArray | None,
    criterion: str | None,
) -> tuple[list[SystemCorrelation], list[str]]:
    """Each system-level metric against the systems' fooled rates, and why any could not
    be; ``samples`` are the fooled rates' rater-bootstrap replicates (systems in the
    order of ``result``)."""
    order = tuple(s.system for s in result.systems)
    rates = {s.system: s.fooled.value for s in result.systems if s.fooled.value is not None}
    found, problems = [], []
    for metric in metrics.systems:
        try:
            found.append(
                _correlation(metric, {k: float(v) for k, v in rates.items()}, order, samples,
                             criterion)
            )  # fmt: skip
        except ValueError as exc:
            problems.append(f"{metric.name}: {exc}")
    return found, problems


def _data_hash(judgments: StudyJudgments, keep: BoolArray, metrics: StudyMetrics) -> str:
    """A hash of the judgments and the metric values an analysis used."""
    digest = metrics_digest(metrics)
    for column in (judgments.vote_id, judgments.rater_id, judgments.exposure_ms):
        digest.update(np.ascontiguousarray(column[keep]).tobytes())
    digest.update("\n".join(judgments.source[keep].tolist()).encode())
    digest.update("\n".join(judgments.answer[keep].tolist()).encode())
    return digest.hexdigest()[:16]


def analyse_realness(*, study: Study, options: ReportOptions) -> tuple[RealnessAnalysis, str, int]:
    """The analysis of a realness study's current judgments and metric values, the hash
    of the data it used and how many judgments. Raises NoVotes when none is left."""
    loaded = study_judgments(study=study, criterion=options.criterion)
    metrics = study_metrics(study=study)
    include = options.include_simulated
    keep = np.ones(loaded.rater_id.size, dtype=bool) if include else ~loaded.simulated
    checks = (
        np.ones(loaded.check_rater_id.size, dtype=bool)
        if include
        else ~np.isin(loaded.check_rater_id, list(loaded.simulated_raters))
    )
    judged = set(loaded.rater_id[keep].tolist()) | set(loaded.check_rater_id[checks].tolist())
    failed = failed_check_raters(
        loaded.check_rater_id[checks],
        loaded.check_passed[checks],
        max_failed=study.max_failed_attention_checks,
    )
    excluded_raters = excluded_judgments = 0
    notes = []
    if options.exclude_flagged and failed:
        drop = keep & np.isin(loaded.rater_id, list(failed))
        excluded_raters, excluded_judgments = len(failed), int(drop.sum())
        keep &= ~drop
        notes.append(
            f"Left out: {excluded_judgments} judgment{'s' if excluded_judgments != 1 else ''} "
            f"of {excluded_raters} rater{'s' if excluded_raters != 1 else ''} who failed more "
            f"than {study.max_failed_attention_checks} attention check"
            f"{'s' if study.max_failed_attention_checks != 1 else ''}."
        )
    if not keep.any():
        raise NoVotes(
            "No judgments to analyse yet"
            + (" (after the exclusions)" if excluded_judgments or not include else "")
            + "."
        )
    labels = loaded.rater[keep]
    result = realness(
        labels,
        loaded.source[keep],
        loaded.answer[keep],
        exposure_ms=loaded.exposure_ms[keep],
        systems=loaded.systems,
        real_source=loaded.real_source,
        level=LEVEL,
    )
    samples = None
    generated = loaded.source[keep] != loaded.real_source
    if generated.any():
        index = {name: k for k, name in enumerate(loaded.systems)}
        samples = fooled_replicates(
            loaded.rater_id[keep][generated],
            np.array([index[s] for s in loaded.source[keep][generated].tolist()], dtype=np.int64),
            loaded.answer[keep][generated] == REAL,
            len(loaded.systems),
            options.replicates,
            seed=_SEED,
        )
    comparisons, problems = metric_correlations(result, metrics, samples, options.criterion)
    same_answer = {r.rater for r in result.raters if "same_answer" in r.flags}
    judgments_of = dict(zip(*np.unique(loaded.rater_id, return_counts=True), strict=True))
    flagged = []
    for pk in sorted(judged):
        flags = ((FAILED_CHECKS,) if pk in failed else ()) + (
            ("same_answer",) if f"rater {pk}" in same_answer else ()
        )
        if flags:
            flagged.append(FlaggedRater(int(pk), int(judgments_of.get(pk, 0)), flags))
    question = None
    if options.criterion is not None:
        question = (
            study.criteria.filter(key=options.criterion).values_list("question", flat=True).first()
        )
    in_checks = checks & np.isin(loaded.check_rater_id, list(judged))
    analysis = RealnessAnalysis(
        study=study.slug,
        criterion=options.criterion,
        question=question,
        realness=result,
        raters_judged=len(judged),
        flagged_raters=tuple(flagged),
        excluded_raters=excluded_raters,
        excluded_judgments=excluded_judgments,
        simulated_judgments=int(loaded.simulated.sum()),
        simulated_included=include,
        attention_checks=int(in_checks.sum()),
        attention_passed=int((in_checks & loaded.check_passed).sum()),
        max_failed_checks=study.max_failed_attention_checks,
        exposure_ms=study.exposure_ms,
        real_share=study.real_share,
        metrics=tuple(comparisons),
        metric_values=metric_about(metrics),
        metric_problems=tuple(problems),
        notes=tuple(notes),
    )
    return analysis, _data_hash(loaded, keep, metrics), int(keep.sum())
