"""HTML pages: home, health, media, and the rater's pages."""

import functools
import mimetypes
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from studies import assignments, limits, raters
from studies.api import SESSION_KEY, session_payload, session_rater
from studies.exceptions import StudyFull
from studies.forms import QuestionnaireForm
from studies.models import Answer, FlagReason, Rater, RaterSource, Study
from studies.raters import Step

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Media are immutable (a new output gets a new name), so browsers may keep them.
_MEDIA_CACHE = "private, max-age=86400, immutable"


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/home.html")


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def _broker_status() -> str:
    """Whether a task can be queued: a connection to the broker (Redis), or the embedded
    broker's folder writable."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        try:  # made on the first task otherwise; a fresh process has not sent one yet
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return "unreachable (queue folder cannot be made)"
        return "ok" if os.access(folder, os.W_OK) else "unreachable (queue folder not writable)"
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # kombu raises the transport's own errors
        return f"unreachable ({type(exc).__name__})"
    return "ok"


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and the compose file's healthchecks: 200 when the database and
    the broker answer, else 503 with what is down (never a 500 page)."""
    checks = {"database": _database_status(), "broker": _broker_status()}
    ok = all(value == "ok" for value in checks.values())
    response = JsonResponse({"ok": ok, **checks}, status=200 if ok else 503)
    if not ok:
        response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


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


_CHUNK = 64 * 1024


def _chunks(handle: File, start: int, length: int) -> Iterator[bytes]:
    """The bytes [start, start + length) of an open file, a chunk at a time, then close it:
    a ``Range: bytes=0-`` on a long video never sits in memory whole."""
    with handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(_CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


@require_safe
def media(request: HttpRequest, name: str) -> HttpResponseBase:
    """Serve a stored medium with byte ranges (video seeking needs 206 responses).

    Only the bytes, their type and length go out: no Last-Modified (the generation time
    would group outputs by system), no file name. A directory, a missing file or a path
    outside the store is a 404; a range that cannot be served is a 416. With
    ``VERDICT_MEDIA_ACCEL_PREFIX`` set, the web server in front sends the bytes
    (X-Accel-Redirect) and this view only checks the name.
    """
    if not settings.SERVE_MEDIA or ".." in name.split("/") or name[:1] == "/" or name[-1:] == "/":
        raise Http404
    try:
        handle = default_storage.open(name, "rb")
        size = handle.size
    except (OSError, ValueError, SuspiciousFileOperation):  # IsADirectoryError is an OSError
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response: HttpResponseBase
    if settings.MEDIA_ACCEL_PREFIX:
        handle.close()
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX.rstrip("/") + "/" + name
    elif (byte_range := request.headers.get("Range")) is None:
        response = FileResponse(handle, content_type=content_type)
        del response["Content-Disposition"]
    else:
        span = _parse_range(byte_range, size)
        if span is None:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = span
        response = StreamingHttpResponse(
            _chunks(handle, start, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = _MEDIA_CACHE
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Rater pages. Each page belongs to one step of the session; a request for another step
# is sent to the current one, so consent and instructions cannot be skipped.

STEP_URLS = {
    Step.CONSENT: "rater-consent",
    Step.INSTRUCTIONS: "rater-instructions",
    Step.COMPARE: "rater-compare",
    Step.QUESTIONNAIRE: "rater-questionnaire",
    Step.DONE: "rater-done",
}
ARRIVAL_KEY = "verdict:arrival:{slug}"


def _step_redirect(study: Study, step: Step) -> HttpResponseRedirect:
    return redirect(STEP_URLS[step], slug=study.slug)


def _too_many(request: HttpRequest, study: Study, wait: int) -> HttpResponse:
    context = {"study": study, "wait": wait}
    response = render(request, "studies/rater/too_many.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


def _unavailable(request: HttpRequest, study: Study, *, full: bool = False) -> HttpResponse:
    context = {"study": study, "full": full}
    return render(request, "studies/rater/unavailable.html", context, status=200)


def _bind(request: HttpRequest, study: Study, rater: Rater) -> None:
    request.session[SESSION_KEY.format(slug=study.slug)] = rater.session_token
    request.session.pop(ARRIVAL_KEY.format(slug=study.slug), None)


RaterView = Callable[[HttpRequest, Study, Rater], HttpResponse]


def rater_step(step: Step) -> Callable[[RaterView], Callable[[HttpRequest, str], HttpResponse]]:
    """A page of one step: the view gets the study and this browser's rater, and a
    request from anyone who is at another step is sent there."""

    def decorate(view: RaterView) -> Callable[[HttpRequest, str], HttpResponse]:
        @functools.wraps(view)
        def page(request: HttpRequest, slug: str) -> HttpResponse:
            study = get_object_or_404(Study, slug=slug)
            rater = session_rater(request, study)
            if rater is None:
                return redirect("rater-entry", slug=slug)
            current = raters.next_step(rater)
            if current != step:
                return _step_redirect(study, current)
            if step in (Step.INSTRUCTIONS, Step.COMPARE) and not study.is_open_to_raters:
                return _unavailable(request, study)
            return view(request, study, rater)

        return page

    return decorate


@require_safe
def rater_entry(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    arrival = raters.read_arrival(study=study, params=request.GET)
    if arrival.identity is None:
        return render(request, "studies/rater/preview.html", {"study": study})
    rater = arrival.rater
    pending = request.session.get(ARRIVAL_KEY.format(slug=study.slug))
    if rater is None and arrival.identity.source == RaterSource.OPEN:
        rater = session_rater(request, study)
        if rater is None and pending is not None:
            # A link without ids (a redirect, a bookmark, the back button) never replaces
            # the identity this browser arrived with: a Prolific participant stays one.
            return redirect("rater-consent", slug=slug)
    if rater is not None:
        _bind(request, study, rater)
        return _step_redirect(study, raters.next_step(rater))
    if not study.is_open_to_raters:
        return _unavailable(request, study)
    if raters.pilot_is_full(study):
        return _unavailable(request, study, full=True)
    if wait := limits.wait_seconds(limits.ARRIVALS, limits.client_address(request)):
        return _too_many(request, study, wait)
    request.session[ARRIVAL_KEY.format(slug=study.slug)] = asdict(arrival.identity)
    return redirect("rater-consent", slug=slug)


@require_http_methods(["GET", "POST"])
def rater_consent(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    if session_rater(request, study) is not None:
        return redirect("rater-entry", slug=slug)
    arrival = request.session.get(ARRIVAL_KEY.format(slug=study.slug))
    if arrival is None:
        return redirect("rater-entry", slug=slug)
    if not study.is_open_to_raters:
        return _unavailable(request, study)
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision not in ("agree", "decline"):
            return render(request, "studies/rater/consent.html", {"study": study})
        if wait := limits.wait_seconds(limits.ARRIVALS, limits.client_address(request)):
            return _too_many(request, study, wait)
        if decision == "decline" and request.POST.get("confirm") != "yes":
            # Declining ends the study for good: ask once more, in case of a slip.
            return render(request, "studies/rater/consent.html", {"study": study, "confirm": True})
        try:
            rater = raters.decide_consent(
                study=study,
                identity=raters.Identity(**arrival),
                agreed=decision == "agree",
                user_agent=request.headers.get("User-Agent", ""),
            )
        except StudyFull:
            return _unavailable(request, study, full=True)
        _bind(request, study, rater)
        return _step_redirect(study, raters.next_step(rater))
    return render(request, "studies/rater/consent.html", {"study": study})


@require_http_methods(["GET", "POST"])
@rater_step(Step.INSTRUCTIONS)
def rater_instructions(request: HttpRequest, study: Study, rater: Rater) -> HttpResponse:
    if request.method == "POST":
        raters.finish_instructions(rater=rater)
        return _step_redirect(study, raters.next_step(rater))
    context = {"study": study, "answers": answer_keys(study)}
    return render(request, "studies/rater/instructions.html", context)


def answer_keys(study: Study) -> list[dict[str, str]]:
    """The offered answers in screen order with their keys (digits, and arrows for sides;
    R and G for real or generated)."""
    if study.is_realness:
        return [
            {"value": Answer.REAL.value, "label": "Real", "key": "R", "alt": "1"},
            {"value": Answer.GENERATED.value, "label": "Generated", "key": "G", "alt": "2"},
        ]
    keys = {
        Answer.LEFT: ("1", "←"),
        Answer.TIE: ("0", ""),
        Answer.BOTH_BAD: ("9", ""),
        Answer.RIGHT: ("2", "→"),
    }
    return [
        {
            "value": answer.value,
            "label": answer.label,
            "key": keys[answer][0],
            "alt": keys[answer][1],
        }
        for answer in (Answer.LEFT, Answer.TIE, Answer.BOTH_BAD, Answer.RIGHT)
        if answer.value in study.allowed_answers
    ]


@ensure_csrf_cookie
@require_safe
@rater_step(Step.COMPARE)
def rater_compare(request: HttpRequest, study: Study, rater: Rater) -> HttpResponse:
    # A GET serves nothing: the page asks for its pairs with a POST once loaded.
    desk = assignments.open_desk(slug=study.slug, session_token=rater.session_token, lock=False)
    session = session_payload(desk, assignments.read_state(desk))
    if session["finished"]:
        rater.refresh_from_db()
        return _step_redirect(study, raters.next_step(rater))
    urls = {
        "session": reverse("api-rater-session", args=[study.slug]),
        "votes": reverse("api-rater-votes", args=[study.slug]),
        "load_failures": reverse("api-rater-load-failures", args=[study.slug]),
        "flags": reverse("api-rater-flags", args=[study.slug]),
    }
    config = compare_config(request, study, session=session, urls=urls)
    unit = "image" if study.is_realness else "pair"
    context = {"study": study, "config": config, "unit": unit}
    return render(request, "studies/rater/compare.html", context)


def compare_config(
    request: HttpRequest, study: Study, *, session: dict[str, Any], urls: dict[str, str]
) -> dict[str, Any]:
    """What the comparison page's script reads: its session, the study's answers and
    timing, and where to send answers (the rater API, or the researcher's preview)."""
    return {
        "session": session,
        "answers": answer_keys(study),
        "min_viewing_ms": study.min_viewing_ms,
        # Real or generated: one image per screen, covered after the exposure (0: never).
        "single": study.is_realness,
        "exposure_ms": study.exposure_ms if study.is_realness else 0,
        "csrf_token": get_token(request),
        "urls": urls,
        "flag_reasons": [{"value": v, "label": label} for v, label in FlagReason.choices],
    }


@require_http_methods(["GET", "POST"])
@rater_step(Step.QUESTIONNAIRE)
def rater_questionnaire(request: HttpRequest, study: Study, rater: Rater) -> HttpResponse:
    form = QuestionnaireForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        raters.complete_session(rater=rater, questionnaire=form.answers())
        return redirect("rater-done", slug=study.slug)
    return render(request, "studies/rater/questionnaire.html", {"study": study, "form": form})


@require_POST
def rater_stop(request: HttpRequest, slug: str) -> HttpResponse:
    """Stop now: from any step after consent, the session ends with the partial code."""
    study = get_object_or_404(Study, slug=slug)
    rater = session_rater(request, study)
    if rater is None:
        return redirect("rater-entry", slug=slug)
    raters.stop_session(rater=rater)
    return redirect("rater-done", slug=slug)


@require_safe
@rater_step(Step.DONE)
def rater_done(request: HttpRequest, study: Study, rater: Rater) -> HttpResponse:
    if not rater.outcome:
        rater = raters.complete_session(rater=rater)
    context = {
        "study": study,
        "outcome": rater.outcome,
        "code": raters.completion_code(rater),
        "redirect_url": raters.completion_url(rater),
    }
    return render(request, "studies/rater/done.html", context)
