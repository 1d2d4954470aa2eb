"""The two tables of VOTE-PATH.md §5, as plain as they were measured: no foreign keys."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class Assignment(models.Model):
    rater_id = models.IntegerField()
    left_id = models.IntegerField()
    right_id = models.IntegerField()
    served_at = models.DateTimeField(null=True)

    # Spelled out: type checking runs with Verdict's settings, where this app is not installed.
    objects: "models.Manager[Assignment]" = models.Manager()

    class Meta:
        indexes = [
            # The vote's pick: the lowest unserved id.
            models.Index(fields=["id"], condition=Q(served_at__isnull=True), name="unserved"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}"


class Vote(models.Model):
    assignment_id = models.IntegerField(unique=True)
    choice = models.CharField(max_length=8)
    client_id = models.UUIDField(unique=True)
    created = models.DateTimeField(db_default=Now())

    objects: "models.Manager[Vote]" = models.Manager()

    def __str__(self) -> str:
        return f"vote {self.pk}"
