"""Researcher JSON: the stored report the page shows, with its stamp."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.core.serialize import to_json
from analysis.models import ReportStatus
from analysis.views import read_options, read_or_request
from studies.models import Study


class LeaderboardApi(APIView):
    """GET: 200 with the stored report and its stamp; 202 while the first build runs;
    404 when the study has no votes to rank."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        options, _ = read_options(study, request.query_params)
        state = read_or_request(study=study, options=options)
        report = state.report
        if report is None or report.status == ReportStatus.PENDING:
            return Response({"detail": "The report is being built; try again shortly."}, 202)
        if state.analysis is None:
            return Response({"detail": report.message or "No report."}, status=404)
        return Response(
            {
                "report": to_json(state.analysis),
                "stamp": {
                    "data_hash": report.data_hash,
                    "software": report.software,
                    "built_at": report.built_at,
                    "votes_used": report.votes_used,
                    "new_votes_since": state.new_votes,
                    "stale": state.stale,
                },
            }
        )
