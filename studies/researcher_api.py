"""The researcher API: what a model team's CI job drives, with a per-user token.

A request carries ``Authorization: Bearer vd_…``: an ApiToken of an active staff user,
not revoked, with the scope the endpoint needs (read, write or launch). Cookies do not
work here (no session authentication), and tokens do not work on the rater pages (they
read only the rater's signed session). Every call is written to the audit log (ApiCall)
with its answer's status. Each app adds its endpoints on ``ResearcherApi``: the same
services the admin calls, never a second implementation of a rule.
"""

from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import lifecycle
from studies.designs import duplicate_study
from studies.models import ApiCall, ApiScope, ApiToken, Study

# last_used_at is written at most this often per token (not on every call).
LAST_USED_EVERY_S = 60


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``; any other header is left to other schemes."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword:
            return None
        if len(words) != 2:
            raise exceptions.AuthenticationFailed("Give the token as “Bearer <token>”.")
        token = ApiToken.objects.by_secret(words[1].decode(errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        now = timezone.now()
        last = token.last_used_at
        if last is None or (now - last).total_seconds() > LAST_USED_EVERY_S:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="verdict"'


def needs(scope: str) -> type[BasePermission]:
    """A permission: a token holding ``scope``."""
    scope = str(getattr(scope, "value", scope))

    class HasScope(BasePermission):
        message = f"This token lacks the {scope!r} scope."

        def has_permission(self, request: Request, view: Any) -> bool:
            token = request.auth
            return isinstance(token, ApiToken) and token.allows(scope)

    HasScope.__name__ = f"Needs{scope.capitalize()}"
    return HasScope


class ResearcherApi(APIView):
    """Token-only; each view names its scope (``scope``); every call is audited."""

    authentication_classes = [TokenAuthentication]
    scope: str = ApiScope.READ

    def get_permissions(self) -> list[BasePermission]:
        return [needs(self.scope)()]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken):
            # Its own transaction: a refused change is rolled back, its log line is not.
            with transaction.atomic():
                ApiCall.objects.create(
                    token=token,
                    method=request.method or "",
                    path=request.get_full_path()[:300],
                    status=response.status_code,
                )
        return response


def study_state(study: Study) -> dict[str, Any]:
    """Where a study stands: status, media and votes against their targets, and the
    criteria whose serving stopped (settled)."""
    counted = (
        Study.objects.with_progress()
        .filter(pk=study.pk)
        .values("n_assets", "asset_target", "n_votes", "vote_target")  # type: ignore[misc]
        .get()
    )
    criteria = list(study.criteria.order_by("order", "pk"))
    return {
        "slug": study.slug,
        "name": study.name,
        "status": study.status,
        "media": {"made": counted["n_assets"], "expected": counted["asset_target"]},
        "votes": {"current": counted["n_votes"], "target": counted["vote_target"]},
        "criteria": [c.key for c in criteria],
        "settled_criteria": [
            {"key": c.key, "at": c.settled_at, "votes": c.settled_votes}
            for c in criteria
            if c.settled_at is not None
        ],
    }


def token_user(request: Request) -> Any:
    """The staff user the request's token acts for."""
    token = request.auth
    assert isinstance(token, ApiToken)
    return token.user


class StudyStateApi(ResearcherApi):
    scope = ApiScope.READ

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Where a study stands")
    def get(self, request: Request, slug: str) -> Response:
        return Response(study_state(get_object_or_404(Study, slug=slug)))


LIFECYCLE = {
    "launch": lifecycle.launch_study,
    "pilot": lifecycle.launch_pilot,
    "pause": lifecycle.pause_study,
    "close": lifecycle.close_study,
}


class StudyLifecycleApi(ResearcherApi):
    """POST …/launch, …/pilot, …/pause, …/close: the admin's buttons; a 409 with the
    reason where the study cannot (media missing, wrong status)."""

    scope = ApiScope.LAUNCH

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Launch, pause, close")
    def post(self, request: Request, slug: str, action: str) -> Response:
        act = LIFECYCLE.get(action)
        if act is None:
            raise exceptions.NotFound(f"No action {action!r}; use {', '.join(LIFECYCLE)}.")
        study = act(study=get_object_or_404(Study, slug=slug))
        return Response(study_state(study))


class StudyDuplicateApi(ResearcherApi):
    """POST (optional ``name``): a new draft with the study's design and nothing made,
    with new completion codes, as the admin's Duplicate; 201 with its state."""

    scope = ApiScope.WRITE

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        name = request.data.get("name", "") if isinstance(request.data, dict) else ""
        if not isinstance(name, str) or len(name) > 200:
            raise exceptions.ValidationError({"name": ["A name of at most 200 characters."]})
        copy = duplicate_study(study=get_object_or_404(Study, slug=slug), name=name.strip())
        return Response(study_state(copy), status=201)


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = TokenAuthentication
    name = "researcherToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
