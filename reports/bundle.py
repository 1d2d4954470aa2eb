"""The report's data as a zip: the votes it used (in the battle-log columns that
``python -m analysis leaderboard`` reads, so the leaderboard can be rebuilt from the
bundle alone), one CSV per table of the page, a data dictionary and report.json."""

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from analysis.models import StudyReport
from analysis.reports import ReportOptions, StudyAnalysis
from reports.document import Bounds, report_json
from studies.models import Answer, AssignmentKind, RaterSource, Study, Vote

WINNER = {
    Answer.LEFT: "model_a",
    Answer.RIGHT: "model_b",
    Answer.TIE: "tie",
    Answer.BOTH_BAD: "tie (bothbad)",
}
# (column, meaning) of votes.csv, in order.
VOTE_DICTIONARY = (
    ("vote_id", "Verdict's id of the vote (current votes only: a corrected vote is replaced)."),
    ("model_a", "System shown on the left."),
    ("model_b", "System shown on the right."),
    ("winner", "model_a, model_b, tie, or 'tie (bothbad)' when the rater said both are bad."),
    ("left", "Which system was on the left: always model_a here."),
    ("rater", "Opaque rater code ('rater <id>'); the same person keeps one code."),
    ("item", "What several raters judged alike: '<prompt id>:<criterion>'."),
    ("response_ms", "Time from the pair being shown to the answer, in milliseconds."),
    ("criterion", "The question's key."),
    ("category", "The prompt's category ('(none)' when it has none)."),
    ("source", "How the rater arrived: open link, prolific, simulated, ..."),
    ("prompt_text", "The prompt."),
    ("left_asset", "Public id of the left image or video."),
    ("right_asset", "Public id of the right one."),
    ("created_at", "When the vote was stored (ISO 8601, UTC)."),
)


def _votes(study: Study, options: ReportOptions, flagged: set[int]) -> Iterator[list[object]]:
    """The current comparison votes the report analysed, oldest first."""
    votes = Vote.objects.filter(
        assignment__study=study, assignment__kind=AssignmentKind.COMPARISON, is_current=True
    )
    if options.criterion is not None:
        votes = votes.filter(assignment__criterion__key=options.criterion)
    if not options.include_simulated:
        votes = votes.exclude(assignment__rater__source=RaterSource.SIMULATED)
    if options.exclude_flagged and flagged:
        votes = votes.exclude(assignment__rater_id__in=flagged)
    rows = votes.order_by("pk").values_list(
        "pk",
        "assignment__left_asset__system__name",
        "assignment__right_asset__system__name",
        "answer",
        "assignment__rater_id",
        "assignment__prompt_id",
        "assignment__criterion__key",
        "response_ms",
        "assignment__prompt__category",
        "assignment__rater__source",
        "assignment__prompt__text",
        "assignment__left_asset__public_id",
        "assignment__right_asset__public_id",
        "created_at",
    )
    for (
        pk,
        a,
        b,
        answer,
        rater,
        prompt,
        key,
        ms,
        category,
        source,
        text,
        la,
        ra,
        at,
    ) in rows.iterator(chunk_size=5000):
        yield [
            pk, a, b, WINNER[Answer(answer)], "model_a", f"rater {rater}", f"{prompt}:{key}",
            ms, key, category or "(none)", source, text, la, ra, at.isoformat(),
        ]  # fmt: skip


def _write_csv(
    archive: zipfile.ZipFile, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    with archive.open(name, "w") as raw, io.TextIOWrapper(raw, "utf-8", newline="") as text:
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def _cell(value: Any) -> Any:
    return ";".join(value) if isinstance(value, tuple) else value


def _tables(analysis: StudyAnalysis) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each table of the page, as a CSV's header and rows."""
    board = analysis.leaderboard
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    row_fields = list(board.rows[0].__dataclass_fields__) if board.rows else ["system"]
    tables["leaderboard.csv"] = (
        row_fields,
        [
            [
                ";".join(v) if isinstance(v, tuple) else v
                for v in (getattr(r, f) for f in row_fields)
            ]
            for r in board.rows
        ],
    )
    agreement = analysis.agreement
    rows: list[list[Any]] = [
        [name, a.value if a.defined else None, a.defined, a.reason, a.n_units, a.n_ratings]
        for name, a in (
            ("krippendorff_alpha", agreement.krippendorff_alpha),
            ("fleiss_kappa", agreement.fleiss_kappa),
            ("percent_agreement", agreement.percent_agreement),
        )
    ]
    if agreement.split_half is not None:
        h = agreement.split_half
        rows.append(["split_half_reliability", h.reliability, True, f"{h.low} to {h.high}",
                     h.splits, None])  # fmt: skip
    tables["agreement.csv"] = (
        ["measure", "value", "defined", "reason_or_interval", "comparisons", "ratings"],
        rows,
    )
    tables["metric_values.csv"] = (
        ["metric", "lower_is_better", "system", "value", "low", "high", "n_images"],
        [
            [m.name, m.lower_is_better, s, v, lo, hi, n]
            for m in analysis.metric_values
            for s, v, lo, hi, n in zip(m.systems, m.values, m.low, m.high, m.n_fake, strict=True)
        ],
    )
    tables["correlations.csv"] = (
        ["metric", "coefficient", "value", "low", "high", "p_value", "min_p_value", "systems"],
        [
            [c.correlation.metric, k.name, k.value, k.low, k.high, k.p_value, k.min_p_value,
             len(c.correlation.systems)]
            for c in analysis.metrics
            for k in c.correlation.coefficients
        ],
    )  # fmt: skip
    tables["disagreements.csv"] = (
        ["metric", "people_prefer", "over", "human_gap", "human_gap_low", "human_gap_high",
         "metric_preferred", "metric_other", "votes", "preferred_wins", "other_wins", "ties"],
        [
            [c.correlation.metric, d.preferred, d.other, d.human_gap, d.human_gap_low,
             d.human_gap_high, d.metric_preferred, d.metric_other, d.votes, d.preferred_wins,
             d.other_wins, d.ties]
            for c in analysis.metrics
            for d in c.disagreements
        ],
    )  # fmt: skip
    ready = analysis.readiness
    if ready is not None:
        fields = list(ready.operations[0].__dataclass_fields__) if ready.operations else []
        tables["operations.csv"] = (
            fields,
            [[getattr(o, f) for f in fields] for o in ready.operations],
        )
        tables["robustness.csv"] = (
            ["system", "category", "score", "low", "high", "votes", "worst_category", "spread"],
            [
                [r.system, c.category, c.score, c.low, c.high, c.votes, r.worst, r.spread]
                for r in ready.robustness
                for c in r.categories
            ],
        )
        gap_fields = list(ready.group_gaps[0].__dataclass_fields__) if ready.group_gaps else []
        tables["group_gaps.csv"] = (
            gap_fields or ["attribute"],
            [[getattr(g, f) for f in gap_fields] for g in ready.group_gaps],
        )
    return tables


README = """\
Verdict agreement report: {study}, criterion {criterion}.

votes.csv            the votes this report analysed (columns: votes_dictionary.csv);
                     `python -m analysis leaderboard votes.csv` rebuilds the leaderboard
report.json          every number of the report page, with its provenance
leaderboard.csv      agreement.csv  metric_values.csv  correlations.csv
disagreements.csv    operations.csv robustness.csv     group_gaps.csv

Data hash {data_hash}; {software}; built {built_at}.
System names are in these files: they are for researchers, never for raters.
"""


def write_archive(
    out: IO[bytes],
    *,
    readme: str,
    study: Study,
    report: StudyReport,
    criterion: str | None,
    data: tuple[str, Sequence[tuple[str, str]], Iterable[Sequence[Any]]],
    tables: dict[str, tuple[list[str], list[list[Any]]]],
    document: dict[str, Any],
) -> None:
    """A report's zip: the README (``readme``, filled in with the study, the report's
    provenance and ``criterion``), the data rows (``data``: the file's name, its
    dictionary of (column, meaning), the rows) with their dictionary, the tables and
    report.json. Shared by the pairwise and the real-or-generated report."""
    readme = readme.format(
        study=study.slug,
        criterion=criterion or "(all)",
        data_hash=report.data_hash,
        software=report.software,
        built_at=document["provenance"]["built_at"],
    )
    name, dictionary, rows = data
    stem = name.removesuffix(".csv")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        _write_csv(archive, name, [c for c, _ in dictionary], rows)
        _write_csv(archive, f"{stem}_dictionary.csv", ["column", "meaning"], dictionary)
        for table, (header, table_rows) in tables.items():
            _write_csv(archive, table, header, table_rows)
        archive.writestr("report.json", json.dumps(document, indent=1, sort_keys=True))


def write_bundle(
    out: IO[bytes], *, study: Study, report: StudyReport, analysis: StudyAnalysis, bounds: Bounds
) -> None:
    """Write the zip to ``out`` (a file opened for binary writing)."""
    options = ReportOptions(**report.options)
    flagged = {f.rater_id for f in analysis.flagged_raters}
    document = report_json(report, analysis, bounds)
    write_archive(
        out,
        readme=README,
        study=study,
        report=report,
        criterion=analysis.criterion,
        data=("votes.csv", VOTE_DICTIONARY, _votes(study, options, flagged)),
        tables=_tables(analysis),
        document=document,
    )
