"""The agreement report as one document: the stored analysis, the decision for the
bounds a reader set, and the provenance. ``report_json`` is what report.json, the API
and the CLI write; ``page_context`` is what the HTML page and the PDF render. Both read
the stored report only: nothing here fits a model."""

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.http import QueryDict

from analysis.core.readiness import Decision, decide, pareto_front
from analysis.core.serialize import to_json
from analysis.models import StudyReport
from analysis.reports import StudyAnalysis
from reports import plots

AGREEMENT_LABELS = {
    "krippendorff_alpha": "Krippendorff's α (nominal)",
    "fleiss_kappa": "Fleiss' κ",
    "percent_agreement": "Percent agreement",
}
COEFFICIENT_LABELS = {
    "kendall_tau_b": "Kendall's τ-b",
    "spearman": "Spearman's ρ",
    "pearson": "Pearson's r",
}


class BadBounds(ValueError):
    """A budget or latency bound that is not a number a reader can mean."""


@dataclass(frozen=True)
class Bounds:
    """What the decision view filters on: cost per image and median latency (seconds)."""

    budget: float | None = None
    latency: float | None = None


def _bound(params: QueryDict, name: str, label: str) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadBounds(f"{label} must be a number, not {raw!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise BadBounds(f"{label} must be a finite number of at least 0, not {raw!r}.")
    return value


def read_bounds(params: QueryDict) -> Bounds:
    """``budget`` (per image) and ``latency`` (seconds) from query parameters.

    Raises
    ------
    BadBounds
        When either is set and is not a finite, non-negative number.
    """
    return Bounds(
        _bound(params, "budget", "The budget per image"),
        _bound(params, "latency", "The latency bound"),
    )


def decision(analysis: StudyAnalysis, bounds: Bounds) -> Decision | None:
    """Which systems meet the bounds and which of them people prefer (None: the report
    has no readiness figures)."""
    ready = analysis.readiness
    if ready is None:
        return None
    ops = {o.system: o for o in ready.operations}
    rows = [r for r in analysis.leaderboard.rows if r.component == 0]
    systems = [r.system for r in rows]
    return decide(
        systems=systems,
        scores=[r.elo for r in rows],
        costs=[ops[s].cost_per_image if s in ops else None for s in systems],
        latencies=[ops[s].latency_p50 if s in ops else None for s in systems],
        replicate_systems=ready.replicate_systems,
        replicates=np.array(ready.replicates, dtype=np.float64).reshape(
            -1, len(ready.replicate_systems)
        ),
        budget=bounds.budget,
        latency=bounds.latency,
    )


def provenance(report: StudyReport) -> dict[str, Any]:
    return {
        "software": report.software,
        "data_hash": report.data_hash,
        "options": report.options,
        "report_key": report.key,
        "votes_used": report.votes_used,
        "built_at": report.built_at.isoformat() if report.built_at else None,
        "build_seconds": report.build_seconds,
    }


def report_json(report: StudyReport, analysis: StudyAnalysis, bounds: Bounds) -> dict[str, Any]:
    """Every number the page shows, by name: the stored analysis, the decision for these
    bounds, and the provenance."""
    return {
        "study": analysis.study,
        "criterion": analysis.criterion,
        "analysis": to_json(analysis),
        "bounds": to_json(bounds),
        "decision": to_json(decision(analysis, bounds)),
        "provenance": provenance(report),
    }


def _metric_plots(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    rows = {r.system: r for r in analysis.leaderboard.rows}
    about = {m.name: m for m in analysis.metric_values}
    panels = []
    for comparison in analysis.metrics:
        corr = comparison.correlation
        info = about.get(corr.metric)
        bounds = {}
        if info is not None:
            bounds = dict(zip(info.systems, zip(info.low, info.high, strict=True), strict=True))
        shown = [
            (s, rows[s], v) for s, v in zip(corr.systems, corr.metric_values, strict=True)
            if s in rows and rows[s].elo is not None
        ]  # fmt: skip
        svg = None
        if len(shown) >= 2:
            svg = plots.metric_scatter(
                metric=corr.metric,
                lower_is_better=corr.lower_is_better,
                systems=[s for s, _, _ in shown],
                elo=[r.elo or 0.0 for _, r, _ in shown],
                elo_err=[_pair(r.elo_low, r.elo_high) for _, r, _ in shown],
                values=[v for _, _, v in shown],
                value_err=[_pair(*bounds.get(s, (None, None))) for s, _, _ in shown],
                disagreements=[(d.preferred, d.other) for d in comparison.disagreements],
            )
        panels.append(
            {
                "comparison": comparison,
                "about": info,
                "svg": svg,
                "coefficients": [
                    (COEFFICIENT_LABELS.get(c.name, c.name), c) for c in corr.coefficients
                ],
            }
        )
    return sorted(panels, key=lambda panel: not panel["comparison"].disagreements)


def _pair(low: float | None, high: float | None) -> tuple[float, float] | None:
    return (low, high) if low is not None and high is not None else None


def _readiness(analysis: StudyAnalysis) -> dict[str, Any] | None:
    ready = analysis.readiness
    if ready is None:
        return None
    score = {r.system: r.elo for r in analysis.leaderboard.rows if r.component == 0}
    ops = [o for o in ready.operations]
    rows = [{"ops": o, "score": score.get(o.system)} for o in ops]
    charts = []
    for label, key in (
        ("cost per image", "cost_per_image"),
        ("median latency (s)", "latency_p50"),
    ):
        known: list[tuple[str, float, float]] = [
            (o.system, float(getattr(o, key)), float(score[o.system] or 0.0))
            for o in ops
            if getattr(o, key) is not None and score.get(o.system) is not None
        ]
        if len(known) < 2:
            continue
        front = pareto_front([s for _, _, s in known], [c for _, c, _ in known])
        charts.append(
            {
                "label": label,
                "front": [name for (name, _, _), on in zip(known, front, strict=True) if on],
                "svg": plots.pareto(
                    systems=[n for n, _, _ in known],
                    score=[s for _, _, s in known],
                    figure_of_merit=[c for _, c, _ in known],
                    front=front,
                    axis=label,
                ),
            }
        )
    categories = sorted({c.category for r in ready.robustness for c in r.categories})
    robustness = [
        {
            "system": r.system,
            "worst": r.worst,
            "spread": r.spread,
            "cells": [next((c for c in r.categories if c.category == k), None) for k in categories],
        }
        for r in ready.robustness
    ]
    return {
        "ready": ready,
        "rows": rows,
        "charts": charts,
        "categories": categories,
        "robustness": robustness,
        "gaps": ready.group_gaps,
    }


def _heatmap(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """P(row beats column) per cell with its colours; None: cannot be compared."""
    board = analysis.leaderboard
    out = []
    for i, row in enumerate(board.rows):
        cells = []
        for j, p in enumerate(board.win_probability[i]):
            colours = plots.heat_colours(p) if p is not None and i != j else None
            cells.append({"p": p if i != j else None, "colours": colours,
                          "better": board.significantly_better[i][j]})  # fmt: skip
        out.append({"system": row.system, "cells": cells})
    return out


def _metric_table(analysis: StudyAnalysis) -> list[tuple[Any, list[float | None]]]:
    """Each metric's value per system, in the leaderboard's order."""
    out = []
    for about in analysis.metric_values:
        value = dict(zip(about.systems, about.values, strict=True))
        out.append((about, [value.get(r.system) for r in analysis.leaderboard.rows]))
    return out


def page_context(
    report: StudyReport, analysis: StudyAnalysis, bounds: Bounds, *, media_url: Any
) -> dict[str, Any]:
    """What templates/reports/report.html renders, plots drawn; ``media_url`` turns a
    stored file name into the address the page (or the PDF renderer) loads it from."""
    board = analysis.leaderboard
    rows = list(board.rows)
    shares = [m.agreed / m.compared for m in analysis.agreement.raters_vs_majority if m.compared]
    return {
        "analysis": analysis,
        "board": board,
        "summary": analysis.summary,
        "bounds": bounds,
        "decision": decision(analysis, bounds),
        "provenance": provenance(report),
        "score_svg": plots.scores(
            [r.system for r in rows],
            [r.elo for r in rows],
            [r.elo_low for r in rows],
            [r.elo_high for r in rows],
        ),
        "heatmap": _heatmap(analysis) if len(rows) >= 2 else None,
        "agreement_rows": [
            (label, getattr(analysis.agreement, key)) for key, label in AGREEMENT_LABELS.items()
        ],
        "agreement_svg": plots.agreement_histogram(shares) if shares else None,
        "metric_panels": _metric_plots(analysis),
        "readiness": _readiness(analysis),
        "metric_table": _metric_table(analysis),
        "examples": [
            (e, media_url(e.preferred_file), media_url(e.other_file)) for e in analysis.examples
        ],
        "options_text": json.dumps(report.options, sort_keys=True),
    }
