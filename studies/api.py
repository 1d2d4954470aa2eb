"""The rater JSON API: the session's open pairs, votes, load failures.

The rater is the one in this browser's signed session for the study; CSRF is enforced as
for a logged-in user. Posting a vote answers with the next pairs, saving a round trip.
"""

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import scheduler, votes
from studies.models import AssignmentKind, Rater, Study
from studies.serializers import LoadFailureInput, SessionOutput, VoteInput

# The session (a signed, readable cookie) holds per study slug the rater's random session
# token: no database id, nothing sequential.
SESSION_KEY = "verdict:rater:{slug}"


def session_rater(request: HttpRequest, study: Study) -> Rater | None:
    token = request.session.get(SESSION_KEY.format(slug=study.slug))
    if not isinstance(token, str):
        return None
    return Rater.objects.select_related("study").filter(session_token=token, study=study).first()


class CsrfSession(SessionAuthentication):
    """Enforce CSRF on unsafe methods; the rater itself is found per study in the view."""

    def authenticate(self, request: Request) -> None:  # type: ignore[override]
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.enforce_csrf(request)
        return None


class RaterApi(APIView):
    authentication_classes = [CsrfSession]
    permission_classes = [AllowAny]

    def rater(self, request: Request, slug: str) -> Rater:
        study = get_object_or_404(Study, slug=slug)
        rater = session_rater(request._request, study)
        # Past judging is allowed too: a retry of the last vote must find the stored one.
        if rater is None or rater.consented_at is None:
            raise NotAuthenticated("No judging session for this study in this browser.")
        return rater


def session_payload(rater: Rater, *, serve: bool = True) -> dict[str, Any]:
    """The session as the page needs it; ``serve=False`` (GET) reads without serving."""
    state = (
        scheduler.session_state(rater=rater) if serve else scheduler.read_session_state(rater=rater)
    )
    payload: dict[str, Any] = dict(SessionOutput(state).data)
    if state.finished:
        payload["next_url"] = reverse("rater-entry", args=[rater.study.slug])
    return payload


class SessionApi(RaterApi):
    """GET reads the session; POST serves the pairs it needs, then returns it."""

    def get(self, request: Request, slug: str) -> Response:
        return Response(session_payload(self.rater(request, slug), serve=False))

    def post(self, request: Request, slug: str) -> Response:
        return Response(session_payload(self.rater(request, slug)))


class VoteApi(RaterApi):
    def post(self, request: Request, slug: str) -> Response:
        rater = self.rater(request, slug)
        given = VoteInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        result = votes.record_vote(
            rater=rater,
            token=data["assignment"],
            answer=data["answer"],
            response_ms=data["response_ms"],
            client_id=data["client_id"],
            correction=data["correction"],
        )
        assignment = result.vote.assignment
        feedback = None
        if assignment.kind == AssignmentKind.PRACTICE:
            feedback = {
                "correct": result.vote.answer == assignment.expected_answer,
                "expected": assignment.expected_answer,
            }
        body = {
            "vote": {
                "client_id": str(result.vote.client_id),
                "answer": result.vote.answer,
                "correction": result.vote.supersedes_id is not None,
            },
            "feedback": feedback,
            "session": session_payload(rater),
        }
        return Response(body, status=201 if result.created else 200)


class LoadFailureApi(RaterApi):
    def post(self, request: Request, slug: str) -> Response:
        rater = self.rater(request, slug)
        given = LoadFailureInput(data=request.data)
        given.is_valid(raise_exception=True)
        votes.record_load_failure(
            rater=rater,
            token=given.validated_data["assignment"],
            detail=given.validated_data["detail"],
        )
        return Response({"session": session_payload(rater)}, status=201)
