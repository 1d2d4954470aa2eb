from celery import shared_task

from studies import webhooks
from studies.models import DeliveryStatus, WebhookDelivery


@shared_task(name="studies.deliver_webhook", bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self, delivery_id: int) -> None:  # type: ignore[no-untyped-def]
    """One attempt; a failed one is retried with backoff (studies.webhooks.attempt)."""
    delivery = (
        WebhookDelivery.objects.select_related("webhook")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is None:  # delivered, given up, or deleted meanwhile
        return
    wait = webhooks.attempt(delivery)
    if wait is not None:
        raise self.retry(countdown=wait)
