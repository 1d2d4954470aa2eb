"""The rater JSON API: the session's open screens, votes, flags and load failures.

The rater is the one in this browser's signed session for the study; CSRF is enforced as
for a logged-in user. Every POST runs as one transaction around the rater's desk
(studies.assignments) and answers with the session, so that a vote records the answer
and serves the next pair in one round trip of the browser.
"""

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import assignments, limits, realness, votes
from studies.assignments import Desk, SessionState
from studies.exceptions import AlreadyVoted
from studies.models import REALNESS_ANSWERS, Assignment, AssignmentKind, Rater, Study
from studies.serializers import (
    FlagInput,
    LoadFailureInput,
    VoteInput,
    plain_vote_input,
    session_output,
)

# The session (a signed, readable cookie) holds per study slug the rater's random session
# token: no database id, nothing sequential.
SESSION_KEY = "verdict:rater:{slug}"


def session_token(request: HttpRequest, slug: str) -> str | None:
    token = request.session.get(SESSION_KEY.format(slug=slug))
    return token if isinstance(token, str) else None


def session_rater(request: HttpRequest, study: Study) -> Rater | None:
    token = session_token(request, study.slug)
    if token is None:
        return None
    return Rater.objects.select_related("study").filter(session_token=token, study=study).first()


class CsrfSession(SessionAuthentication):
    """Enforce CSRF on unsafe methods; the rater itself is found per study in the view."""

    def authenticate(self, request: Request) -> None:  # type: ignore[override]
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.enforce_csrf(request)
        return None


def session_payload(desk: Desk, state: SessionState) -> dict[str, Any]:
    payload = session_output(state)
    if state.finished:
        payload["next_url"] = reverse("rater-entry", args=[desk.study.slug])
    return payload


class RaterApi(APIView):
    authentication_classes = [CsrfSession]
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.check_rate(request._request, kwargs["slug"])

    def check_rate(self, request: HttpRequest, slug: str) -> None:
        """Each session's calls are rate-limited (studies.limits): a 429 with
        Retry-After, before anything is read or stored."""
        who = session_token(request, slug) or limits.client_address(request)
        wait = limits.wait_seconds(limits.RATER_CALLS, f"{slug}:{who}")
        if wait:
            raise Throttled(wait=wait, detail=f"Too many requests: wait {wait} s and try again.")

    def in_desk(
        self,
        request: HttpRequest,
        slug: str,
        act: Callable[[Desk], Any],
        *,
        at_once: bool = False,
        **desk: Any,
    ) -> tuple[Desk, Any, SessionState]:
        """Run ``act`` on the rater's locked desk, then serve what the session needs, all
        in one transaction; ``at_once`` (a vote): first without the lock or a transaction
        (assignments.act_at_once), which stores nothing where it cannot finish."""
        token = session_token(request, slug)
        assignments.sweep_now_and_then(slug)

        def acting() -> tuple[Desk, Any, SessionState]:
            with transaction.atomic():
                opened = assignments.open_desk(slug=slug, session_token=token, serving=True, **desk)
                return opened, act(opened), assignments.fill(opened)

        def serving() -> tuple[Desk, SessionState]:
            with transaction.atomic():
                opened = assignments.open_desk(slug=slug, session_token=token)
                return opened, assignments.fill(opened)

        done = (
            assignments.act_at_once(slug=slug, session_token=token, act=act, **desk)
            if at_once
            else None
        )
        if done is not None:
            opened, result, state = done
        else:
            try:
                opened, result, state = assignments.retrying_deadlocks(acting)
            except IntegrityError:
                # Only a race the checks cannot see: the same client id on two pairs at once.
                raise AlreadyVoted("This answer was already recorded.") from None
        while state.short:  # the first screens of a session: one per transaction
            opened, state = assignments.retrying_deadlocks(serving)
        return opened, result, state


class SessionApi(RaterApi):
    """GET reads the session; POST serves the screens it needs, then returns it."""

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The session's open screens")
    def get(self, request: Request, slug: str) -> Response:
        desk = assignments.open_desk(
            slug=slug, session_token=session_token(request._request, slug), lock=False
        )
        return Response(session_payload(desk, assignments.read_state(desk)))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Serve the screens")
    def post(self, request: Request, slug: str) -> Response:
        desk, _, state = self.in_desk(request._request, slug, lambda desk: None)
        return Response(session_payload(desk, state))


def _feedback(desk: Desk, screen: list[Assignment], result: votes.VoteResult) -> Any:
    row = screen[0]
    if row.kind != AssignmentKind.PRACTICE:
        return None
    answer = result.vote.answer
    if row.expected_answer in REALNESS_ANSWERS:
        return {
            "correct": assignments.passes(row, answer),
            "expected": row.expected_answer,
            "question": row.criterion.question,
            "explanation": realness.EXPLAINED[row.expected_answer],
        }
    better = row.left_asset_id if row.expected_answer == "left" else row.right_asset_id
    explanation = next(
        (
            known.explanation
            for known in desk.content.known.get(row.criterion_id, [])
            if known.better.pk == better
            and {known.better.pk, known.worse.pk} == {row.left_asset_id, row.right_asset_id}
        ),
        "",
    )
    return {
        "correct": assignments.passes(row, answer),
        "expected": row.expected_answer,
        "question": row.criterion.question,
        "explanation": explanation,
    }


class VoteApi(RaterApi):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """A well-formed vote goes around DRF's request cycle (its request wrapper,
        content negotiation, parser and serializer were a fifth of a vote's CPU under
        bench/load_votes.py) through the same checks in the same order: CSRF, the rate
        limit, then ``answer``; errors go through the API's exception handler. Anything
        else takes DRF's cycle, which words the input errors."""
        given = None
        if request.method == "POST" and request.content_type == "application/json":
            given = plain_vote_input(request.body)
        if given is None:
            return super().dispatch(request, *args, **kwargs)
        slug = kwargs["slug"]
        try:
            CsrfSession().enforce_csrf(request)  # type: ignore[arg-type]
            self.check_rate(request, slug)
            body, status = self.answer(request, slug, given)
            return JsonResponse(body, status=status)
        except Exception as exc:  # noqa: BLE001 - the handler decides, as DRF's cycle would
            # The handler DRF's own cycle uses (settings.REST_FRAMEWORK).
            handled = self.get_exception_handler()(exc, {"view": self, "request": request})
            if handled is None:
                raise
            response = JsonResponse(handled.data, status=handled.status_code, safe=False)
            for header in ("Retry-After", "WWW-Authenticate"):
                if header in handled:
                    response[header] = handled[header]
            return response

    @extend_schema(request=VoteInput, responses=OpenApiTypes.OBJECT, summary="Answer a screen")
    def post(self, request: Request, slug: str) -> Response:
        given = VoteInput(data=request.data)
        given.is_valid(raise_exception=True)
        body, status = self.answer(request._request, slug, given.validated_data)
        return Response(body, status=status)

    def answer(
        self, request: HttpRequest, slug: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """Store the screen's answers and serve what the session needs next: the
        response's body and status."""
        if data.get("answers"):
            answers = [(item["assignment"], item["answer"]) for item in data["answers"]]
        else:
            answers = [(data["assignment"], data["answer"])]

        def record(desk: Desk) -> votes.VoteResult:
            return votes.store(
                desk,
                answers=answers,
                response_ms=data["response_ms"],
                client_id=data["client_id"],
                correction=data["correction"],
            )

        desk, result, state = self.in_desk(
            request,
            slug,
            record,
            at_once=True,
            client_id=data["client_id"],
            tokens=[t for t, _ in answers],
        )
        screen = [vote.assignment for vote in result.votes]
        body = {
            "vote": {
                "client_id": str(data["client_id"]),
                "answer": result.vote.answer,
                "answers": {vote.assignment.token: vote.answer for vote in result.votes},
                "correction": result.vote.supersedes_id is not None,
            },
            "feedback": _feedback(desk, screen, result),
            "session": session_payload(desk, state),
        }
        return body, 201 if result.created else 200


class LoadFailureApi(RaterApi):
    @extend_schema(request=LoadFailureInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        given = LoadFailureInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        desk, _, state = self.in_desk(
            request._request,
            slug,
            lambda desk: assignments.replace(desk, data["assignment"], data["detail"]),
            tokens=[data["assignment"]],
        )
        return Response({"session": session_payload(desk, state)}, status=201)


class FlagApi(RaterApi):
    """A pair flagged as broken, disturbing or impossible to judge: it is replaced."""

    @extend_schema(request=FlagInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        given = FlagInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        desk, _, state = self.in_desk(
            request._request,
            slug,
            lambda desk: assignments.flag(desk, data["assignment"], data["reason"], data["side"]),
            tokens=[data["assignment"]],
        )
        return Response({"session": session_payload(desk, state)}, status=201)


class CsrfSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The rater API's credentials in the schema: the signed session cookie set by the
    entry pages (and the CSRF token on unsafe methods)."""

    target_class = CsrfSession
    name = "raterSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
