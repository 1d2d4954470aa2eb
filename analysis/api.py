"""Researcher JSON: the leaderboard the page shows."""

from django.shortcuts import get_object_or_404
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.leaderboards import NoVotes, study_leaderboard
from analysis.views import read_choices
from studies.models import Study


class LeaderboardApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        choices = read_choices(study, request.query_params)
        try:
            return Response(study_leaderboard(study=study, choices=choices))
        except NoVotes as exc:
            return Response({"detail": str(exc)}, status=404)
