"""The stored analysis of a study: built in the background, read by every page."""

from django.db import models

from studies.models import Study


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Being built"
    READY = "ready", "Ready"
    EMPTY = "empty", "No votes to analyse"
    FAILED = "failed", "Failed"


class StudyReportQuerySet(models.QuerySet["StudyReport"]):
    def for_study(self, study: Study) -> "StudyReportQuerySet":
        return self.filter(study=study)


class StudyReport(models.Model):
    """One analysis of a study's votes under one set of options (criterion, who is
    included, bootstrap size), stored as the typed result's JSON
    (analysis.reports.StudyAnalysis via analysis.core.serialize) with what it was built
    from: the hash of the votes it used, the last vote id it saw, the software version
    and the build time. A vote with a higher id makes it stale."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports")
    key = models.CharField(max_length=64, help_text="Hash of the options.")
    options = models.JSONField()
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    body = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="Why it is empty or failed.")
    data_hash = models.CharField(max_length=64, blank=True)
    last_vote_id = models.BigIntegerField(default=0)
    # analysis.loaders.metrics_stamp of the metric values it used: a change makes it stale.
    metrics_stamp = models.CharField(max_length=120, blank=True)
    votes_used = models.PositiveIntegerField(default=0)
    software = models.CharField(max_length=64, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    build_seconds = models.FloatField(null=True, blank=True)

    objects = StudyReportQuerySet.as_manager()

    class Meta:
        constraints = [
            # One stored report per study and options; also serves the page's lookup.
            models.UniqueConstraint(fields=["study", "key"], name="studyreport_unique_study_key")
        ]

    def __str__(self) -> str:
        return f"report {self.key[:8]} of {self.study_id}"
