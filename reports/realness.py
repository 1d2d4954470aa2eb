"""A real-or-generated study's report: report.json, the page's (and the PDF's) context
and the zip, all from the stored RealnessAnalysis; nothing here computes a statistic.

The zip holds the judgments the report analysed (judgments.csv, the rules of the stored
options applied again: criterion, simulated raters, raters excluded for failed checks),
one CSV per table of the page and report.json."""

import json
from collections.abc import Iterator
from typing import IO, Any

from analysis.core.serialize import to_json
from analysis.models import StudyReport
from analysis.realness_report import FAILED_CHECKS, RealnessAnalysis, judgment_votes, real_source
from analysis.reports import ReportOptions
from reports.bundle import write_archive
from reports.document import COEFFICIENT_LABELS, provenance
from studies.exports import external_code
from studies.models import RaterSource, Study

EXPLANATION = (
    "Real or generated: each rater saw one image at a time, a real photograph or a "
    "system's output, and answered “real” or “generated” (a two-alternative forced "
    "choice, as in HYPE and Stein et al. 2023). A system's fooled rate is the share of "
    "its generated images judged real: higher means more realistic, 0.5 means people "
    "could not tell its images from real ones on average."
)
# (column, meaning) of judgments.csv, in order.
JUDGMENT_DICTIONARY = (
    ("vote_id", "Verdict's id of the answer (current answers only: a corrected one is replaced)."),
    ("rater", "Opaque rater code ('rater <id>'), as report.json names raters."),
    ("participant_id", "Prolific PID: hashed with the study's salt, plain, or empty, as the "
     "study's export setting says."),
    ("system", "The system whose image was shown, or the real images' label."),
    ("truth", "real or generated: what the image was."),
    ("answer", "real or generated: what the rater said."),
    ("exposure_ms", "How long the image was shown, in ms; 0: until answered."),
    ("response_ms", "Time from the image being shown to the answer, in milliseconds."),
    ("asset", "Public id of the image."),
    ("criterion", "The question's key."),
    ("rater_source", "How the rater arrived: open link, prolific, simulated, ..."),
    ("created_at", "When the answer was stored (ISO 8601, UTC)."),
)  # fmt: skip


def realness_json(report: StudyReport, analysis: RealnessAnalysis) -> dict[str, Any]:
    """report.json of a realness study: the stored analysis and the provenance."""
    return {
        "study": analysis.study,
        "study_type": analysis.study_type,
        "criterion": analysis.criterion,
        "analysis": to_json(analysis),
        "provenance": provenance(report),
    }


def _fooled_order(analysis: RealnessAnalysis) -> list[Any]:
    """The systems by fooled rate, highest first; those without one last (study order)."""
    return sorted(
        analysis.realness.systems,
        key=lambda s: (s.fooled.value is None, -(s.fooled.value or 0.0)),
    )


def realness_context(report: StudyReport, analysis: RealnessAnalysis) -> dict[str, Any]:
    """What templates/reports/realness.html renders."""
    rows = _fooled_order(analysis)
    exposures = sorted(
        {e.exposure_ms for s in rows for e in s.by_exposure},
        key=lambda ms: float("inf") if ms is None else ms,
    )
    same_answer = [r for r in analysis.realness.raters if "same_answer" in r.flags]
    return {
        "analysis": analysis,
        "result": analysis.realness,
        "explanation": EXPLANATION,
        "rows": rows,
        "percent": round(100 * analysis.realness.level),
        "exposures": exposures if len(exposures) > 1 else [],
        "exposure_rows": [
            {
                "system": s.system,
                "cells": [
                    next((e.fooled for e in s.by_exposure if e.exposure_ms == ms), None)
                    for ms in exposures
                ],
            }
            for s in rows
        ],
        "same_answer": same_answer,
        "failed_checks": [f for f in analysis.flagged_raters if FAILED_CHECKS in f.flags],
        "metric_panels": [
            {
                "correlation": c,
                "coefficients": [
                    (COEFFICIENT_LABELS.get(k.name, k.name), k) for k in c.coefficients
                ],
            }
            for c in analysis.metrics
        ],
        "metric_table": [
            (m, [dict(zip(m.systems, m.values, strict=True)).get(s.system) for s in rows])
            for m in analysis.metric_values
        ],
        "provenance": provenance(report),
        "options_text": json.dumps(report.options, sort_keys=True),
    }


def judgment_rows(
    study: Study, options: ReportOptions, analysis: RealnessAnalysis
) -> Iterator[list[object]]:
    """The current judgments the report analysed, oldest first, in JUDGMENT_DICTIONARY's
    columns."""
    votes = judgment_votes(study=study, criterion=options.criterion)
    if not options.include_simulated:
        votes = votes.exclude(assignment__rater__source=RaterSource.SIMULATED)
    excluded = [f.rater_id for f in analysis.flagged_raters if FAILED_CHECKS in f.flags]
    if options.exclude_flagged and excluded:
        votes = votes.exclude(assignment__rater_id__in=excluded)
    names = dict(study.systems.values_list("pk", "name"))
    real_ids = set(study.systems.filter(is_real=True).values_list("pk", flat=True))
    real = real_source(tuple(n for pk, n in names.items() if pk not in real_ids))
    rows = votes.order_by("pk").values_list(
        "pk",
        "assignment__rater_id",
        "assignment__rater__external_id",
        "assignment__left_asset__system_id",
        "answer",
        "assignment__exposure_ms",
        "response_ms",
        "assignment__left_asset__public_id",
        "assignment__criterion__key",
        "assignment__rater__source",
        "created_at",
    )
    for pk, rater, external, system, answer, exposure, ms, asset, key, source, at in rows.iterator(
        chunk_size=5000
    ):
        is_real = system in real_ids
        yield [
            pk, f"rater {rater}", external_code(study, external),
            real if is_real else names[system], "real" if is_real else "generated", answer,
            exposure or 0, ms, asset, key, source, at.isoformat(),
        ]  # fmt: skip


def _tables(analysis: RealnessAnalysis) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each table of the page, as a CSV's header and rows."""
    systems = [
        [s.system, s.raters, s.fooled.count, s.fooled.judgments, s.fooled.value, s.fooled.low,
         s.fooled.high, s.fooled.reason, s.real_error.value, s.real_error.low, s.real_error.high,
         s.hype_infinity.value, s.hype_infinity.low, s.hype_infinity.high,
         s.detection.d_prime, s.detection.criterion, s.detection.reason or s.reason]
        for s in _fooled_order(analysis)
    ]  # fmt: skip
    return {
        "systems.csv": (
            [
                "system",
                "raters",
                "judged_real",
                "generated_judgments",
                "fooled_rate",
                "fooled_low",
                "fooled_high",
                "fooled_reason",
                "real_error",
                "real_error_low",
                "real_error_high",
                "hype_infinity",
                "hype_low",
                "hype_high",
                "d_prime",
                "criterion_c",
                "reason",
            ],
            systems,
        ),  # fmt: skip
        "exposures.csv": (
            ["system", "exposure_ms", "fooled_rate", "low", "high", "judgments", "raters"],
            [
                [
                    s.system,
                    "unlimited" if e.exposure_ms is None else e.exposure_ms,
                    e.fooled.value,
                    e.fooled.low,
                    e.fooled.high,
                    e.fooled.judgments,
                    e.fooled.raters,
                ]
                for s in analysis.realness.systems
                for e in s.by_exposure
            ],
        ),  # fmt: skip
        "raters.csv": (
            ["rater", "judgments", "fooled_rate", "error_rate", "d_prime", "criterion_c", "flags"],
            [
                [
                    r.rater,
                    r.judgments,
                    r.fooled_rate,
                    r.error_rate,
                    r.detection.d_prime,
                    r.detection.criterion,
                    ";".join(r.flags),
                ]
                for r in analysis.realness.raters
            ],
        ),  # fmt: skip
        "metric_values.csv": (
            ["metric", "lower_is_better", "system", "value", "low", "high", "n_images"],
            [
                [m.name, m.lower_is_better, s, v, lo, hi, n]
                for m in analysis.metric_values
                for s, v, lo, hi, n in zip(
                    m.systems, m.values, m.low, m.high, m.n_fake, strict=True
                )
            ],
        ),
        "correlations.csv": (
            ["metric", "coefficient", "value", "low", "high", "p_value", "min_p_value", "systems"],
            [
                [c.metric, k.name, k.value, k.low, k.high, k.p_value, k.min_p_value, len(c.systems)]
                for c in analysis.metrics
                for k in c.coefficients
            ],
        ),  # fmt: skip
    }


README = """\
Verdict real-or-generated report: {study}, criterion {criterion}.

judgments.csv        the judgments this report analysed (columns: judgments_dictionary.csv)
report.json          every number of the report page, with its provenance
systems.csv          per system: fooled rate, real-image error, HYPE∞, d′ and c
exposures.csv        raters.csv  metric_values.csv  correlations.csv

Data hash {data_hash}; {software}; built {built_at}.
System names are in these files: they are for researchers, never for raters.
"""


def write_realness_bundle(
    out: IO[bytes], *, study: Study, report: StudyReport, analysis: RealnessAnalysis
) -> None:
    """Write the zip to ``out`` (a file opened for binary writing)."""
    options = ReportOptions(**report.options)
    document = realness_json(report, analysis)
    write_archive(
        out,
        readme=README,
        study=study,
        report=report,
        criterion=analysis.criterion,
        data=("judgments.csv", JUDGMENT_DICTIONARY, judgment_rows(study, options, analysis)),
        tables=_tables(analysis),
        document=document,
    )
