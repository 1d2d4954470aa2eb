"""The leaderboard page for researchers."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from analysis.leaderboards import Choices, NoVotes, study_leaderboard
from studies.models import Study

AGREEMENT_LABELS = {
    "krippendorff_alpha": "Krippendorff's α (nominal)",
    "fleiss_kappa": "Fleiss' κ",
    "percent_agreement": "Raw agreement",
}


def read_choices(study: Study, params: Any) -> Choices:
    """Criterion (default: the study's first) and inclusion switches from query params."""
    criteria = study.criteria.order_by("order", "pk")
    key = params.get("criterion")
    criterion = criteria.filter(key=key).first() if key else criteria.first()
    return Choices(
        criterion=criterion,
        include_simulated=params.get("simulated", "include") != "exclude",
        exclude_flagged=params.get("flagged", "include") == "exclude",
    )


def _interval_bars(rows: list[dict[str, Any]]) -> None:
    """Where each interval sits on a shared axis, in percent, for the table's bars."""
    lows = [r["elo_low"] for r in rows if r["elo_low"] is not None]
    highs = [r["elo_high"] for r in rows if r["elo_high"] is not None]
    if not lows:
        return
    start, end = min(lows) - 10, max(highs) + 10
    span = max(end - start, 1e-9)
    for row in rows:
        row["bar"] = {
            "left": round(100 * (row["elo_low"] - start) / span, 2),
            "width": round(max(100 * (row["elo_high"] - row["elo_low"]) / span, 0.5), 2),
            "point": round(100 * (row["elo"] - start) / span, 2),
        }


@staff_member_required
@require_safe
def leaderboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    choices = read_choices(study, request.GET)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": f"Leaderboard: {study.name}",
        "study": study,
        "choices": choices,
        "criteria": list(study.criteria.order_by("order", "pk")),
        "api_url": reverse("api-leaderboard", args=[slug]) + "?" + request.GET.urlencode(),
    }
    try:
        board = study_leaderboard(study=study, choices=choices)
    except NoVotes as exc:
        context["empty"] = str(exc)
    else:
        _interval_bars(board["systems"])
        order = board["order"]
        board["matrix"] = [
            {
                "system": name,
                "cells": [
                    {
                        "p": board["win_probability"][i][j],
                        "better": board["significantly_better"][i][j],
                    }
                    for j in range(len(order))
                ],
            }
            for i, name in enumerate(order)
        ]
        board["agreement_rows"] = [
            (label, board["agreement"][key]) for key, label in AGREEMENT_LABELS.items()
        ]
        context["board"] = board
    return render(request, "analysis/leaderboard.html", context)
