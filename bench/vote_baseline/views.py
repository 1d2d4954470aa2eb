"""``GET /ping`` and the plain vote view of VOTE-PATH.md §5."""

import json
import uuid

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from vote_baseline.models import Assignment, Vote

CHOICES = {"left", "right", "tie", "both_bad"}


@require_safe
def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@require_POST
def vote(request: HttpRequest) -> JsonResponse:
    """Store the vote and serve the next free assignment, in one transaction."""
    try:
        data = json.loads(request.body)
        assignment_id = int(data["assignment_id"])
        choice = str(data["choice"])
        client_id = uuid.UUID(str(data["client_id"]))
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "Send assignment_id, choice and client_id."}, status=400)
    if choice not in CHOICES:
        return JsonResponse({"error": f"{choice!r} is not a choice."}, status=400)
    try:
        with transaction.atomic():
            Vote.objects.create(assignment_id=assignment_id, choice=choice, client_id=client_id)
            served = (
                Assignment.objects.select_for_update(skip_locked=True)
                .filter(served_at__isnull=True)
                .order_by("id")
                .first()
            )
            if served is not None:
                Assignment.objects.filter(pk=served.pk).update(served_at=timezone.now())
    except IntegrityError:
        return JsonResponse({"error": "Already voted."}, status=409)
    body = None
    if served is not None:
        body = {"id": served.pk, "left_id": served.left_id, "right_id": served.right_id}
    return JsonResponse({"next": body}, status=201)
