"""Plain pages and the media view. Rater pages come with the rater flow."""

import mimetypes
import re

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.http import require_safe

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Media are immutable (a new output gets a new name), so browsers may keep them.
_MEDIA_CACHE = "private, max-age=86400, immutable"


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/home.html")


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First byte and last byte (inclusive) of a single ``bytes=`` range, or None if bad."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        length = int(last)
        return (max(size - length, 0), size - 1) if length else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


@require_safe
def media(request: HttpRequest, name: str) -> HttpResponseBase:
    """Serve a stored medium with byte ranges (video seeking needs 206 responses).

    Only the bytes, their type and length go out: no Last-Modified (the generation time
    would group outputs by system), no file name.
    """
    if not settings.SERVE_MEDIA or ".." in name.split("/") or name.startswith("/"):
        raise Http404
    try:
        size = default_storage.size(name)
    except (FileNotFoundError, OSError, ValueError):
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    byte_range = request.headers.get("Range")
    if byte_range is None:
        response: HttpResponseBase = FileResponse(
            default_storage.open(name, "rb"), content_type=content_type
        )
        del response["Content-Disposition"]
    else:
        span = _parse_range(byte_range, size)
        if span is None:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = span
        with default_storage.open(name, "rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        response = HttpResponse(body, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = _MEDIA_CACHE
    response["X-Content-Type-Options"] = "nosniff"
    return response
