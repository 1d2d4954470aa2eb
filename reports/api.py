"""Researcher JSON: report.json, the document every form of the report renders."""

from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.api import not_ready
from analysis.views import read_options, read_or_request
from reports.document import BadBounds, Bounds, read_bounds, report_json
from reports.realness import realness_json
from reports.render import render_zip
from reports.views import report_filename, stored_analysis
from studies.exports import iter_votes_csv
from studies.models import ApiScope, Study
from studies.researcher_api import ResearcherApi


def report_response(request: Request, slug: str) -> Response:
    """report.json: 200; 202 while the first build runs; 404 when there is nothing to
    report; 400 for bounds that are not numbers. A real-or-generated study's document
    has ``study_type`` "realness" and no decision (bounds do not apply to it)."""
    study = get_object_or_404(Study, slug=slug)
    options, _ = read_options(study, request.query_params)
    try:
        bounds = read_bounds(request.query_params)
    except BadBounds as exc:
        raise ValidationError({"detail": str(exc)}) from exc
    state = read_or_request(study=study, options=options)
    if (waiting := not_ready(state)) is not None:
        return waiting
    report, analysis = state.report, state.analysis
    assert report is not None
    if state.realness is not None:
        document = realness_json(report, state.realness)
    else:
        assert analysis is not None
        document = report_json(report, analysis, bounds)
    document["stale"] = state.stale
    document["new_votes_since"] = state.new_votes
    return Response(document)


class ReportApi(APIView):
    """GET: report.json for staff signed in (``budget`` and ``latency`` set the
    decision's bounds); see ``report_response``."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        return report_response(request, slug)


class ResearcherReportApi(ResearcherApi):
    """GET: report.json for a token with the read scope; see ``report_response``."""

    scope = ApiScope.READ

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The stored report (JSON)")
    def get(self, request: Request, slug: str) -> Response:
        return report_response(request, slug)


class ResearcherVotesApi(ResearcherApi):
    """GET: the study's votes as the admin's CSV export."""

    scope = ApiScope.READ

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR}, summary="Votes (CSV)")
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        study = get_object_or_404(Study, slug=slug)
        response = StreamingHttpResponse(
            iter_votes_csv(study=study), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{study.slug}-votes.csv"'
        return response


class ResearcherReportZipApi(ResearcherApi):
    """GET: the report's data zip (report.json, CSVs, plots), as the page links it; 202
    while the first build runs."""

    scope = ApiScope.READ

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        study = get_object_or_404(Study, slug=slug)
        options, _ = read_options(study, request.query_params)
        state = read_or_request(study=study, options=options)
        if (waiting := not_ready(state)) is not None:
            return waiting
        analysis = stored_analysis(state)
        assert state.report is not None and analysis is not None
        out = render_zip(study=study, report=state.report, analysis=analysis, bounds=Bounds())
        name = report_filename(study, options.criterion, "zip")
        return FileResponse(out, as_attachment=True, filename=name, content_type="application/zip")
