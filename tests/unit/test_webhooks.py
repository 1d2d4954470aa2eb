"""Webhooks: signed payloads, retries with backoff, once per event, and the events the
study's life emits."""

import json

import pytest

from studies import assignments, webhooks
from studies.lifecycle import launch_study
from studies.models import DeliveryStatus, StudyStatus, Webhook, WebhookDelivery
from studies.tasks import deliver_webhook
from tests.factories import make_ready_study
from tests.receiver import receiver

pytestmark = pytest.mark.django_db


def test_a_receiver_that_fails_twice_gets_the_same_signed_event_a_third_time() -> None:
    study = make_ready_study(systems=2, prompts=1)
    with receiver([500, 503]) as hook_server:
        hook = Webhook.objects.create(url=hook_server.url, events=["launched"])
        launch_study(study=study)
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == DeliveryStatus.PENDING and delivery.event == "launched"
        waits = [webhooks.attempt(delivery) for _ in range(3)]
        got = hook_server.received
    assert waits == [webhooks.BACKOFF_S, webhooks.BACKOFF_S * 4, None]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert delivery.last_status_code == 200 and delivery.delivered_at is not None
    assert len(got) == 3 and len({r.body for r in got}) == 1
    last = got[-1]
    payload = json.loads(last.body)
    assert payload["event"] == "launched" and payload["study"] == study.slug
    stamp, signature = last.headers["X-Verdict-Timestamp"], last.headers["X-Verdict-Signature"]
    assert webhooks.verify(hook.secret, stamp, last.body, signature)
    # A bad signature: another secret, a changed body or a replayed signature fail.
    assert not webhooks.verify("another secret", stamp, last.body, signature)
    assert not webhooks.verify(hook.secret, stamp, last.body.replace(b"launched", b"closed"),
                               signature)  # fmt: skip
    assert not webhooks.verify(hook.secret, str(int(stamp) + 60), last.body, signature)


def test_the_task_retries_until_delivered_and_gives_up_in_the_log() -> None:
    study = make_ready_study(systems=2, prompts=1)
    with receiver([500, 500]) as hook_server:
        Webhook.objects.create(url=hook_server.url, events=["launched", "ranking_settled"])
        launch_study(study=study)
        delivery = WebhookDelivery.objects.get()
        deliver_webhook.apply(args=(delivery.pk,))  # eager: the retries run at once
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    # A receiver that is gone: every attempt logged, then given up.
    assignments.settle_criteria(study=study, votes={study.criteria.get().pk: 40})
    lost = WebhookDelivery.objects.get(event="ranking_settled")
    assert lost.payload["data"]["criterion"] == study.criteria.get().key
    deliver_webhook.apply(args=(lost.pk,))
    lost.refresh_from_db()
    assert lost.status == DeliveryStatus.FAILED and lost.attempts == webhooks.MAX_ATTEMPTS
    assert lost.last_error.startswith("not delivered")


def test_events_go_once_to_the_webhooks_that_want_them() -> None:
    study, other = make_ready_study(systems=2, prompts=1), make_ready_study(systems=2, prompts=1)
    everywhere = Webhook.objects.create(url="http://127.0.0.1:9/a", events=["report_rebuilt"])
    mine = Webhook.objects.create(url="http://127.0.0.1:9/b", study=study, events=["launched"])
    Webhook.objects.create(url="http://127.0.0.1:9/c", events=["launched"], active=False)
    assert webhooks.emit(study=study, event="launched", key="once") == 1
    assert webhooks.emit(study=study, event="launched", key="once") == 0
    assert webhooks.emit(study=other, event="launched") == 0
    assert webhooks.emit(study=other, event="report_rebuilt") == 1
    sent = set(WebhookDelivery.objects.values_list("webhook_id", "event"))
    assert sent == {(mine.pk, "launched"), (everywhere.pk, "report_rebuilt")}


def test_media_ready_is_sent_only_when_every_output_exists() -> None:
    from studies.lifecycle import finish_generation
    from studies.models import Asset, Study

    whole = make_ready_study(systems=2, prompts=2)
    partial = make_ready_study(systems=2, prompts=2)
    Asset.objects.outputs().filter(system__study=partial).first().delete()  # type: ignore[union-attr]
    Webhook.objects.create(url="http://127.0.0.1:9/m", events=["media_ready"])
    for study in (whole, partial):
        Study.objects.filter(pk=study.pk).update(status="generating")
        finish_generation(study=study)
    sent = WebhookDelivery.objects.get()
    assert sent.payload["study"] == whole.slug
    assert sent.payload["data"] == {"media": 4, "expected": 4}


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_fails_after_commit_fails_neither_the_launch_nor_the_delivery(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(deliver_webhook, "delay", broker_down)
    study = make_ready_study(systems=2, prompts=1)
    Webhook.objects.create(url="http://127.0.0.1:9/hook", events=["launched"])
    launch_study(study=study)  # commits, then fails to queue: logged, not raised
    study.refresh_from_db()
    assert study.status == StudyStatus.LIVE
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING  # kept, for the admin to send again
    # The log names what failed (Django names a callback by its __qualname__).
    assert any("_queue" in r.getMessage() and "broker is down" in r.getMessage()
               for r in caplog.records)  # fmt: skip
