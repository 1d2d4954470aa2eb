"""A Content-Security-Policy on everything a rater's browser loads: the rater pages run
only the project's own script files (no inline script, no eval), so an injected string
cannot run, and no other site may frame them or receive their forms."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

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
