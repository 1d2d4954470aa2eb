"""Site-wide middleware: a Content-Security-Policy on everything a rater's browser loads
(the rater pages run only the project's own script files: no inline script, no eval, so
an injected string cannot run, and no other site may frame them or receive their forms),
a 503 with a retry hint instead of a 500 while the database is unavailable, and Django's
middleware that only pages need, which the rater JSON API goes around."""

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.common import CommonMiddleware

logger = logging.getLogger(__name__)

RATER_PREFIXES = ("/r/", "/api/r/", "/media/")
RATER_API_PREFIX = "/api/r/"
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class PagesOnly:
    """A middleware the rater JSON API goes around: its calls (most of the traffic, a vote
    each) need no signed-in user, no one-time messages and none of the site's URL rules,
    and the three cost a tenth of a vote's CPU in Python (bench/vote_cpu.py)."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if request.path_info.startswith(RATER_API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class PageCommon(PagesOnly, CommonMiddleware):
    pass


class PageAuthentication(PagesOnly, AuthenticationMiddleware):
    pass


class PageMessages(PagesOnly, MessageMiddleware):
    pass


class RaterContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path.startswith(RATER_PREFIXES):
            response.setdefault("Content-Security-Policy", POLICY)
            response.setdefault("Referrer-Policy", "same-origin")
        return response


class DatabaseUnavailable:
    """While the database is down or restarting, every request that needs it gets a 503
    with Retry-After and a sentence (JSON for the API), never a 500 page or a traceback;
    the browser's retry with the same client id then lands once the database is back."""

    RETRY_AFTER = "5"
    MESSAGE = "The service is briefly unavailable; nothing was lost. Try again in a moment."

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exception)
        response: HttpResponse
        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response = JsonResponse({"detail": self.MESSAGE}, status=503)
        else:
            response = HttpResponse(
                f"<!doctype html><title>A moment, please</title><p>{self.MESSAGE}</p>",
                status=503,
            )
        response["Retry-After"] = self.RETRY_AFTER
        response["Cache-Control"] = "no-store"
        return response
