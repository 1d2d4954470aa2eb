"""One exception handler for the JSON API: domain errors become 4xx with their message."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        return Response({"detail": str(exc)}, status=status)
    return drf_exception_handler(exc, context)
