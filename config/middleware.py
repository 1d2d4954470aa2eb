"""Site-wide middleware: a Content-Security-Policy on everything a rater's browser loads
(the rater pages run only the project's own script files: no inline script, no eval, so
an injected string cannot run, and no other site may frame them or receive their forms),
and a 503 with a retry hint instead of a 500 while the database is unavailable."""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

logger = logging.getLogger(__name__)

RATER_PREFIXES = ("/r/", "/api/r/", "/media/")
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
