"""The leaderboard page for researchers: renders the stored report, never fits."""

from dataclasses import asdict
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from analysis.core.results import SystemRow
from analysis.reports import ReportOptions, ReportState, read_report, request_build
from studies.models import Criterion, Study

AGREEMENT_LABELS = {
    "krippendorff_alpha": "Krippendorff's α (nominal)",
    "fleiss_kappa": "Fleiss' κ",
    "percent_agreement": "Raw agreement",
}


def read_options(study: Study, params: QueryDict) -> tuple[ReportOptions, Criterion | None]:
    """Criterion (default: the study's first) and inclusion switches from query params."""
    criteria = study.criteria.order_by("order", "pk")
    key = params.get("criterion")
    criterion = criteria.filter(key=key).first() if key else criteria.first()
    options = ReportOptions(
        criterion=criterion.key if criterion else None,
        include_simulated=params.get("simulated", "include") != "exclude",
        exclude_flagged=params.get("flagged", "include") == "exclude",
    )
    return options, criterion


def read_or_request(*, study: Study, options: ReportOptions) -> ReportState:
    """The stored report; when there is none yet, or it is stale, ask for a build (the
    background task dedupes and debounces)."""
    state = read_report(study=study, options=options)
    if state.report is None or state.stale:
        request_build(study=study, options=options)
    return state


def _interval_bars(rows: list[SystemRow]) -> list[dict[str, Any]]:
    """Where each interval sits on a shared axis, in percent; an open side runs to the
    edge of the axis."""
    values = [v for r in rows for v in (r.elo_low, r.elo, r.elo_high) if v is not None]
    if not values:
        return [{"row": r, "bar": None} for r in rows]
    start, end = min(values) - 10, max(values) + 10
    span = max(end - start, 1e-9)

    def where(value: float) -> float:
        return round(100 * (value - start) / span, 2)

    out = []
    for row in rows:
        bar = None
        if row.elo is not None:
            left = where(row.elo_low) if row.elo_low is not None else 0.0
            right = where(row.elo_high) if row.elo_high is not None else 100.0
            bar = {
                "left": left,
                "width": round(max(right - left, 0.5), 2),
                "point": where(row.elo),
                "open_low": row.elo_low is None,
                "open_high": row.elo_high is None,
            }
        out.append({"row": row, "bar": bar})
    return out


COEFFICIENT_LABELS = {
    "kendall_tau_b": "Kendall's τ-b",
    "spearman": "Spearman's ρ",
    "pearson": "Pearson's r",
}
# Scatter geometry (SVG user units).
PLOT_W, PLOT_H, PAD = 420, 260, 44


def _scale(values: list[float], start: float, end: float) -> Any:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    low, high = low - 0.08 * span, high + 0.08 * span

    def at(value: float) -> float:
        return round(start + (end - start) * (value - low) / (high - low), 1)

    return at


def metric_panels(analysis: Any) -> list[dict[str, Any]]:
    """Per metric: the scatter of its value against the human score (Elo, with the
    leaderboard's interval), systems labelled and disagreeing pairs joined; the
    correlations; the disagreements. Up on the y axis is always better."""
    rows = {r.system: r for r in analysis.leaderboard.rows}
    about = {m.name: m for m in analysis.metric_values}
    panels = []
    for comparison in analysis.metrics:
        corr = comparison.correlation
        info = about.get(corr.metric)
        bounds = {}
        if info is not None:
            bounds = dict(zip(info.systems, zip(info.low, info.high, strict=True), strict=True))
        points = [
            (s, rows[s], v) for s, v in zip(corr.systems, corr.metric_values, strict=True)
            if s in rows and rows[s].elo is not None
        ]  # fmt: skip
        plot = None
        if len(points) >= 2:
            xs = [x for _, r, _ in points for x in (r.elo_low, r.elo, r.elo_high) if x is not None]
            ys = [v for _, _, v in points]
            ys += [b for s, _, _ in points for b in bounds.get(s, (None, None)) if b is not None]
            x_at = _scale(xs, PAD, PLOT_W - 12)
            # Lower-is-better metrics run downwards, so up is better for every metric.
            top, bottom = (PLOT_H - PAD, 12) if corr.lower_is_better else (12, PLOT_H - PAD)
            y_at = _scale(ys, bottom, top)
            where = {}
            marks = []
            for system, row, value in points:
                low, high = bounds.get(system, (None, None))
                x, y = x_at(row.elo), y_at(value)
                where[system] = (x, y)
                marks.append({
                    "system": system, "x": x, "y": y,
                    "x_low": x_at(row.elo_low) if row.elo_low is not None else PAD,
                    "x_high": x_at(row.elo_high) if row.elo_high is not None else PLOT_W - 12,
                    "y_low": y_at(low) if low is not None else None,
                    "y_high": y_at(high) if high is not None else None,
                    "value": value,
                })  # fmt: skip
            lines = [
                {"x1": where[d.preferred][0], "y1": where[d.preferred][1],
                 "x2": where[d.other][0], "y2": where[d.other][1]}
                for d in comparison.disagreements
                if d.preferred in where and d.other in where
            ]  # fmt: skip
            plot = {"marks": marks, "lines": lines, "w": PLOT_W, "h": PLOT_H, "pad": PAD}
        panels.append({
            "comparison": comparison,
            "about": info,
            "plot": plot,
            "coefficients": [(COEFFICIENT_LABELS.get(c.name, c.name), c)
                             for c in corr.coefficients],
        })  # fmt: skip
    # Where people and a metric disagree comes first: it is what the page is for.
    return sorted(panels, key=lambda panel: not panel["comparison"].disagreements)


@staff_member_required
@require_safe
def leaderboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    if study.is_realness:
        # A real-or-generated study has no pairwise votes to rank: its report says why.
        return render(
            request,
            "analysis/pairwise_only.html",
            {**admin.site.each_context(request), "title": f"Leaderboard: {study.name}",
             "study": study, "tool": "Leaderboard",
             "purpose": "The leaderboard ranks the systems of pairwise studies"},
        )  # fmt: skip
    options, criterion = read_options(study, request.GET)
    state = read_or_request(study=study, options=options)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": f"Leaderboard: {study.name}",
        "study": study,
        "options": options,
        "criterion": criterion,
        "criteria": list(study.criteria.order_by("order", "pk")),
        "api_url": reverse("api-leaderboard", args=[slug]) + "?" + request.GET.urlencode(),
        "rebuild_url": reverse("leaderboard-rebuild", args=[slug]) + "?" + request.GET.urlencode(),
        "state": state,
        "report": state.report,
    }
    analysis = state.analysis
    if analysis is not None:
        board = analysis.leaderboard
        context["analysis"] = analysis
        context["board"] = board
        context["rows"] = _interval_bars(list(board.rows))
        context["matrix"] = [
            {
                "system": row.system,
                "cells": [
                    {"p": p, "better": better}
                    for p, better in zip(
                        board.win_probability[i], board.significantly_better[i], strict=True
                    )
                ],
            }
            for i, row in enumerate(board.rows)
        ]
        context["metric_panels"] = metric_panels(analysis)
        context["agreement_rows"] = [
            (label, getattr(analysis.agreement, key)) for key, label in AGREEMENT_LABELS.items()
        ]
    return render(request, "analysis/leaderboard.html", context)


@staff_member_required
@require_POST
def rebuild_report(request: HttpRequest, slug: str) -> HttpResponse:
    """Staff button: build this report now in the background."""
    study = get_object_or_404(Study, slug=slug)
    options, _ = read_options(study, request.GET)
    from analysis import tasks

    tasks.build_report.delay(study_id=study.pk, options=asdict(options))
    messages.info(request, "Rebuilding the report in the background; refresh in a moment.")
    page = "report" if study.is_realness else "leaderboard"
    return redirect(reverse(page, args=[slug]) + "?" + request.GET.urlencode())
