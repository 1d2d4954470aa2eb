"""The agreement report for staff: the HTML page, its PDF and its zip, all rendered from
the stored report (analysis.reports); nothing here fits."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from analysis.core.gate import MODES, GateDecision, gate
from analysis.core.results import Leaderboard
from analysis.realness_report import RealnessAnalysis
from analysis.reports import ReportOptions, ReportState, StudyAnalysis
from analysis.views import read_options, read_or_request
from reports.document import BadBounds, Bounds, read_bounds
from reports.render import PdfUnavailable, render_html, render_pdf, render_zip
from studies.models import Study


def _stale(state: ReportState) -> str:
    if not state.stale:
        return ""
    what = []
    if state.new_votes:
        what.append(f"{state.new_votes} new vote{'s' if state.new_votes != 1 else ''}")
    if state.metrics_changed:
        what.append("changed metric values")
    return f"Since this report was built: {' and '.join(what)}; a rebuild is under way."


def _not_ready(request: HttpRequest, study: Study, state: ReportState) -> HttpResponse:
    report = state.report
    message = (
        report.message
        if report is not None and report.message
        else ("The report is being built in the background; this page refreshes itself.")
    )
    status = 202 if report is None or not report.message else 200
    return render(
        request, "reports/pending.html", {"study": study, "message": message,
                                          "refresh": status == 202}, status=status,
    )  # fmt: skip


def report_filename(study: Study, criterion: str | None, suffix: str) -> str:
    return f"{study.slug}-{criterion or 'all'}-report.{suffix}"


def stored_analysis(state: ReportState) -> StudyAnalysis | RealnessAnalysis | None:
    """The stored report's analysis, whichever the study's type (None: none yet)."""
    return state.realness if state.realness is not None else state.analysis


def _query(request: HttpRequest, options: ReportOptions) -> str:
    query = f"?criterion={options.criterion}" if options.criterion else "?"
    return query + "".join(
        f"&{k}={request.GET[k]}" for k in ("simulated", "flagged") if k in request.GET
    )


def _realness_page(
    request: HttpRequest, study: Study, options: ReportOptions, state: ReportState
) -> HttpResponse:
    """A real-or-generated study's report page: no leaderboard, decision or gate (they
    rank pairwise votes)."""
    assert state.report is not None and state.realness is not None
    query = _query(request, options)
    links = {
        "admin": reverse("admin:studies_study_change", args=[study.pk]),
        "pdf": reverse("report-pdf", args=[study.slug]) + query,
        "zip": reverse("report-zip", args=[study.slug]) + query,
        "json": reverse("api-report", args=[study.slug]) + query,
    }
    html = render_html(
        study=study, report=state.report, analysis=state.realness, bounds=Bounds(),
        extra={"links": links, "stale": _stale(state),
               "criteria": list(study.criteria.order_by("order", "pk"))},
    )  # fmt: skip
    return HttpResponse(html)


@staff_member_required
@require_safe
def report_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    options, _ = read_options(study, request.GET)
    state = read_or_request(study=study, options=options)
    if state.realness is not None and state.report is not None:
        return _realness_page(request, study, options, state)
    if state.analysis is None or state.report is None:
        return _not_ready(request, study, state)
    error = ""
    try:
        bounds = read_bounds(request.GET)
    except BadBounds as exc:
        bounds, error = Bounds(), str(exc)
    query = _query(request, options)
    links = {
        "admin": reverse("admin:studies_study_change", args=[study.pk]),
        "leaderboard": reverse("leaderboard", args=[slug]) + query,
        "pdf": reverse("report-pdf", args=[slug]) + query,
        "zip": reverse("report-zip", args=[slug]) + query,
        "json": reverse("api-report", args=[slug]) + query,
    }
    decision, gate_error = _gate(request, state.analysis.leaderboard)
    html = render_html(
        study=study, report=state.report, analysis=state.analysis, bounds=bounds,
        extra={
            "links": links, "bounds_error": error, "stale": _stale(state),
            "criteria": list(study.criteria.order_by("order", "pk")),
            "gate": decision, "gate_error": gate_error, "gate_modes": MODES,
            "gate_query": request.GET,
        },
    )  # fmt: skip
    return HttpResponse(html, status=400 if error else 200)


def _gate(request: HttpRequest, board: Leaderboard) -> tuple[GateDecision | None, str]:
    """The release gate asked on the page (``candidate``, ``baseline``, ``mode``,
    ``margin``): the same decision as the API's and ``verdict gate``."""
    if not request.GET.get("candidate") or not request.GET.get("baseline"):
        return None, ""
    try:
        margin = float(request.GET.get("margin") or 0)
        mode = request.GET.get("mode") or ("non_inferior" if margin > 0 else "not_worse")
        decision = gate(
            board,
            candidate=request.GET["candidate"],
            baseline=request.GET["baseline"],
            mode=mode,
            margin_elo=margin,
        )
    except ValueError as exc:
        return None, str(exc)
    return decision, ""


@staff_member_required
@require_safe
def report_pdf(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    options, _ = read_options(study, request.GET)
    state = read_or_request(study=study, options=options)
    analysis = stored_analysis(state)
    if analysis is None or state.report is None:
        return _not_ready(request, study, state)
    try:
        bounds = read_bounds(request.GET)
        pdf = render_pdf(study=study, report=state.report, analysis=analysis, bounds=bounds)
    except BadBounds as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    except PdfUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="{report_filename(study, options.criterion, "pdf")}"'
    )
    return response


@staff_member_required
@require_safe
def report_zip(request: HttpRequest, slug: str) -> HttpResponseBase:
    study = get_object_or_404(Study, slug=slug)
    options, _ = read_options(study, request.GET)
    state = read_or_request(study=study, options=options)
    analysis = stored_analysis(state)
    if analysis is None or state.report is None:
        return _not_ready(request, study, state)
    try:
        bounds = read_bounds(request.GET)
    except BadBounds as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    out = render_zip(study=study, report=state.report, analysis=analysis, bounds=bounds)
    return FileResponse(
        out, as_attachment=True, filename=report_filename(study, options.criterion, "zip"),
        content_type="application/zip",
    )  # fmt: skip
