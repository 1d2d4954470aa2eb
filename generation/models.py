"""Generation jobs: one job per "Generate media" request, one item per (system, prompt, seed)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from studies.models import Asset, Prompt, Study, System


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Finished with failures"
    CANCELLED = "cancelled", "Cancelled"


class GenerationJobQuerySet(models.QuerySet["GenerationJob"]):
    def unfinished(self) -> "GenerationJobQuerySet":
        return self.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])


class GenerationJob(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_jobs")
    status = models.CharField(max_length=10, choices=JobStatus, default=JobStatus.QUEUED)
    # Counters move only on an item's first transition, so retries and redelivered
    # messages cannot count twice.
    expected = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__lte=models.F("expected") - models.F("failed")),
                name="generationjob_counts_within_expected",
            ),
        ]

    def __str__(self) -> str:
        return f"generation job {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class JobItem(models.Model):
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="items")
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    seed = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=ItemStatus, default=ItemStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "system", "prompt", "seed"], name="jobitem_unique_job_item"
            ),
        ]
        indexes = [
            # The admin's list of a job's failed items.
            models.Index(fields=["job", "status"], name="jobitem_job_status"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of job {self.job_id}"
