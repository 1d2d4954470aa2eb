"""Automated metrics of a study's media: reference sets, cached features, and the values
(computed here or imported) that the report sets beside the human ranking."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from studies.models import Asset, Study, System


class ReferenceSet(models.Model):
    """Real images a study's systems are measured against (FID needs one)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reference_sets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, help_text="Where the images come from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="referenceset_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


def reference_upload_to(instance: "ReferenceImage", filename: str) -> str:
    return f"ref/{secrets.token_urlsafe(12)}.png"


class ReferenceImage(models.Model):
    """One real image, stored as ingest re-encoded it (PNG, metadata stripped), like
    every generated medium, so both sides of a set metric are decoded alike."""

    reference_set = models.ForeignKey(ReferenceSet, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=reference_upload_to, max_length=200)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # The same picture uploaded twice counts once.
            models.UniqueConstraint(
                fields=["reference_set", "sha256"], name="referenceimage_unique_content"
            )
        ]

    def __str__(self) -> str:
        return self.original_name or f"reference image {self.pk}"


class FeatureVector(models.Model):
    """An extractor's features of one asset or reference image, computed once: adding a
    system computes only its own."""

    extractor = models.CharField(max_length=120)
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reference_image = models.ForeignKey(
        ReferenceImage, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    dim = models.PositiveIntegerField()
    data = models.BinaryField(help_text="float64, little-endian")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(asset__isnull=False, reference_image__isnull=True)
                | Q(asset__isnull=True, reference_image__isnull=False),
                name="featurevector_one_owner",
            ),
            models.UniqueConstraint(
                fields=["extractor", "asset"],
                condition=Q(asset__isnull=False),
                name="featurevector_unique_asset",
            ),
            models.UniqueConstraint(
                fields=["extractor", "reference_image"],
                condition=Q(reference_image__isnull=False),
                name="featurevector_unique_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.extractor} features of {self.asset_id or self.reference_image_id}"


class RunKind(models.TextChoices):
    SET = "set", "Set metrics against a reference set"
    ASSET = "asset", "Per-asset measures"
    IMPORT = "import", "Imported from CSV"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class MetricRun(models.Model):
    """One computation or import of metric values, with what it used and how it went."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="metric_runs")
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    extractor = models.CharField(max_length=40, blank=True)
    reference_set = models.ForeignKey(
        ReferenceSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    message = models.TextField(blank=True)
    values_written = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class Source(models.TextChoices):
    COMPUTED = "computed", "Computed by Verdict"
    IMPORTED = "imported", "Imported"


class MetricValue(models.Model):
    """A system-level metric value: a set metric against a reference set, or a number
    computed elsewhere. ``low``/``high``: its interval over images where known;
    ``replicates``: its bootstrap values (paired with the human bootstrap in the
    report)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="metric_values")
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="metric_values")
    metric = models.CharField(max_length=80)
    extractor = models.CharField(max_length=120, blank=True)
    value = models.FloatField(null=True, blank=True)
    lower_is_better = models.BooleanField()
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)
    n_fake = models.PositiveIntegerField(null=True, blank=True)
    n_real = models.PositiveIntegerField(null=True, blank=True)
    dim = models.PositiveIntegerField(null=True, blank=True)
    method = models.CharField(max_length=200, blank=True)
    notes = models.JSONField(default=list, blank=True)
    replicates = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    run = models.ForeignKey(MetricRun, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["metric", "extractor", "system_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "metric", "extractor"], name="metricvalue_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} of {self.system_id}: {self.value}"

    @property
    def label(self) -> str:
        return f"{self.metric} [{self.extractor}]" if self.extractor else self.metric


class AssetMeasure(models.Model):
    """A per-asset measure (sharpness, colourfulness, an imported score)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    measure = models.CharField(max_length=80)
    value = models.FloatField()
    lower_is_better = models.BooleanField()
    source = models.CharField(max_length=10, choices=Source.choices)
    run = models.ForeignKey(MetricRun, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["asset", "measure"], name="assetmeasure_unique")
        ]

    def __str__(self) -> str:
        return f"{self.measure} of asset {self.asset_id}: {self.value}"
