"""Webhooks on study events: a signed JSON POST per event and receiver, retried with
backoff on a Celery queue, every attempt in the delivery log (WebhookDelivery).

``emit`` records one delivery per active webhook that asks for the event, once per
event key (a retried task or a second look never sends an event twice), and queues it
when the transaction commits. Each app emits its own events: studies (launched, vote
target reached, ranking settled, media ready), analysis (report rebuilt).

The receiver checks ``X-Verdict-Signature: sha256=<hex>``, the HMAC-SHA256 with the
webhook's secret of ``<X-Verdict-Timestamp>.<body>`` (``verify`` here does it), and may
refuse old timestamps against replays.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from studies.models import DeliveryStatus, Study, Webhook, WebhookDelivery
from studies.signals import after_commit

MAX_ATTEMPTS = 6
# Seconds before attempt n + 1: BACKOFF_S × 4^(n − 1), so 10 s, 40 s, 160 s, ... (~3 h in all).
BACKOFF_S = 10
TIMEOUT_S = 10


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs: whether ``signature`` is this body's, in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def emit(*, study: Study, event: str, key: str = "", data: Mapping[str, Any] | None = None) -> int:
    """Record the event for every webhook that wants it (once per ``key``, default the
    event) and queue the deliveries after commit; returns how many were recorded."""
    hooks = Webhook.objects.filter(Q(study=study) | Q(study__isnull=True), active=True)
    payload = {
        "event": event,
        "study": study.slug,
        "at": timezone.now().isoformat(),
        "data": dict(data or {}),
    }
    made = 0
    for hook in hooks:
        if event not in hook.events:
            continue
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    webhook=hook, event=event, key=f"{study.pk}:{key or event}", payload=payload
                )
        except IntegrityError:  # sent before: once per key
            continue
        # The delivery is recorded (the admin can send it again): a broker that fails
        # to take it must not fail the request that caused the event.
        after_commit(_queue, delivery.pk)
        made += 1
    return made


def _queue(delivery_id: int) -> None:
    from studies.tasks import deliver_webhook

    deliver_webhook.delay(delivery_id)


def attempt(delivery: WebhookDelivery) -> int | None:
    """Send the delivery once and log the answer: None when done (delivered, or the last
    attempt failed), else the seconds to wait before the next attempt."""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(delivery.webhook.url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "Verdict-Webhook/1")
    request.add_header("X-Verdict-Event", delivery.event)
    request.add_header("X-Verdict-Delivery", str(delivery.pk))
    request.add_header("X-Verdict-Timestamp", timestamp)
    request.add_header("X-Verdict-Signature", sign(delivery.webhook.secret, timestamp, body))
    delivery.attempts += 1
    code, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        error = f"not delivered: {exc}"[:300]
    delivery.last_status_code, delivery.last_error = code, error
    wait = None
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
    else:
        wait = BACKOFF_S * 4 ** (delivery.attempts - 1)
    delivery.save(
        update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at"]
    )
    return wait
