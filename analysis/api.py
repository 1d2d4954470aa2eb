"""Researcher JSON: the stored report the page shows, with its stamp."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.core.gate import MODES, gate
from analysis.core.serialize import to_json
from analysis.models import ReportStatus
from analysis.reports import ReportState
from analysis.views import read_options, read_or_request
from studies.models import ApiScope, Study
from studies.researcher_api import ResearcherApi


def not_ready(state: ReportState) -> Response | None:
    """The answer while a stored report has no analysis to give: 202 while its first
    build runs, 404 with its reason when there is nothing to analyse; None when it has
    one. Every reader of the stored report answers these two cases alike."""
    report = state.report
    if report is None or report.status == ReportStatus.PENDING:
        return Response({"detail": "The report is being built; try again shortly."}, 202)
    if state.analysis is None and state.realness is None:
        return Response({"detail": report.message or "No report."}, status=404)
    return None


# The answer of the readers that rank pairwise votes, for a real-or-generated study.
PAIRWISE_ONLY = (
    "{what} applies to pairwise studies; {study} is a real-or-generated study: its report "
    "gives each system's fooled rate (GET /api/v1/studies/{slug}/report)."
)


def pairwise_only(study: Study, what: str) -> str:
    """Why a pairwise reader has no answer for a real-or-generated study."""
    return PAIRWISE_ONLY.format(what=what, study=study.name, slug=study.slug)


class LeaderboardApi(APIView):
    """GET: 200 with the stored report and its stamp (a real-or-generated study's
    realness analysis, its ``study_type`` "realness"); 202 while the first build runs;
    404 when the study has no votes to rank."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        options, _ = read_options(study, request.query_params)
        state = read_or_request(study=study, options=options)
        if (waiting := not_ready(state)) is not None:
            return waiting
        report = state.report
        body = state.realness if state.realness is not None else state.analysis
        assert report is not None and body is not None
        return Response(
            {
                "report": to_json(body),
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


def gate_response(request: Request, slug: str) -> Response:
    """The release gate on the stored report of ``criterion`` (default: the first):
    ``candidate`` and ``baseline`` (system names), ``mode`` (not_worse, non_inferior,
    better) and ``margin`` (Elo, for non_inferior). 200 with the decision (its ``code``
    is the CLI's exit code); 202 while the first build runs; 400 for bad parameters, and
    for a real-or-generated study (the gate compares pairwise scores)."""
    study = get_object_or_404(Study, slug=slug)
    if study.is_realness:
        raise ValidationError({"detail": pairwise_only(study, "The release gate")})
    params = request.query_params
    options, _ = read_options(study, params)
    try:
        margin = float(params.get("margin", "0") or 0)
    except ValueError:
        raise ValidationError({"margin": ["A number of Elo points."]}) from None
    mode = params.get("mode") or ("non_inferior" if margin > 0 else "not_worse")
    missing = [name for name in ("candidate", "baseline") if not params.get(name)]
    if missing:
        raise ValidationError({name: ["Name a system of the study."] for name in missing})
    state = read_or_request(study=study, options=options)
    if (waiting := not_ready(state)) is not None:
        return waiting
    assert state.analysis is not None and state.report is not None
    report = state.report
    try:
        decision = gate(
            state.analysis.leaderboard,
            candidate=params["candidate"],
            baseline=params["baseline"],
            mode=mode,
            margin_elo=margin,
        )
    except ValueError as exc:
        raise ValidationError({"detail": str(exc)}) from None
    return Response(
        {
            **to_json(decision),
            "criterion": options.criterion,
            "stale": state.stale,
            "new_votes_since": state.new_votes,
            "data_hash": report.data_hash,
        }
    )


class ResearcherGateApi(ResearcherApi):
    scope = ApiScope.READ

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("candidate", str, required=True),
            OpenApiParameter("baseline", str, required=True),
            OpenApiParameter("criterion", str),
            OpenApiParameter("mode", str, enum=list(MODES)),
            OpenApiParameter("margin", float),
        ],
        summary="Release gate: the candidate against the baseline",
    )
    def get(self, request: Request, slug: str) -> Response:
        return gate_response(request, slug)
