"""Metric values of a study, computed: features (cached), set metrics per system against
a reference set, and per-asset measures. Plain functions; the Celery tasks and the admin
call them."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from django.db import transaction
from django.db.models import Model

from analysis.core.setmetrics import SetMetric, cmmd, fd, kid, prdc
from metrics.extractors import Extractor, get_extractor
from metrics.measures import MEASURES, measure_image
from metrics.models import (
    AssetMeasure,
    FeatureVector,
    MetricRun,
    MetricValue,
    ReferenceImage,
    ReferenceSet,
    Source,
)
from metrics.pipeline import batches, decode_rgb, features_of_bytes
from metrics.signals import metrics_changed
from studies.models import Asset, Study

M = TypeVar("M", bound=Model)
# Bootstrap replicates over images stored with each set metric; the report pairs them
# with as many human replicates.
REPLICATES = 200
KID_SUBSET = 1000
# k-nearest-neighbour balls need more images than their k (Naeem et al.'s k = 5).
PRDC_K = 5


class MetricsError(ValueError):
    """A computation the study's data cannot support, said plainly."""


def _read(field_file: Any) -> bytes:
    with field_file.open("rb") as handle:
        return bytes(handle.read())


def _cached_features(
    owners: Sequence[M], extractor: Extractor, *, owner_field: str, file_of: Callable[[M], Any]
) -> np.ndarray:
    """The extractor's features of each owner (asset or reference image), in order: the
    cached rows, and the missing ones computed from the stored bytes and cached."""
    ids = [owner.pk for owner in owners]
    stored = {
        getattr(row, f"{owner_field}_id"): row
        for row in FeatureVector.objects.filter(
            extractor=extractor.id, **{f"{owner_field}__in": ids}
        )
    }
    missing = [owner for owner in owners if owner.pk not in stored]
    if missing:
        features = features_of_bytes((_read(file_of(owner)) for owner in missing), extractor)
        rows = [
            FeatureVector(
                extractor=extractor.id,
                dim=features.shape[1],
                data=np.ascontiguousarray(row, dtype="<f8").tobytes(),
                **{owner_field: owner},
            )
            for owner, row in zip(missing, features, strict=True)
        ]
        # A concurrent run may have cached some meanwhile: theirs are equal.
        FeatureVector.objects.bulk_create(rows, ignore_conflicts=True)
        stored.update((owner.pk, row) for owner, row in zip(missing, rows, strict=True))
    if not ids:
        return np.zeros((0, extractor.dim))
    return np.stack([np.frombuffer(bytes(stored[pk].data), dtype="<f8") for pk in ids])


def asset_features(assets: Sequence[Asset], extractor: Extractor) -> np.ndarray:
    return _cached_features(assets, extractor, owner_field="asset", file_of=lambda a: a.file)


def reference_features(images: Sequence[ReferenceImage], extractor: Extractor) -> np.ndarray:
    return _cached_features(
        images, extractor, owner_field="reference_image", file_of=lambda i: i.file
    )


def set_metrics(real: np.ndarray, fake: np.ndarray, extractor_id: str) -> list[SetMetric]:
    """FD, KID, CMMD (unit-norm features only), precision/recall/density/coverage of a
    generated set against the reference, each with its bootstrap over images (the same
    seed for every system, so replicate b shares the reference resample)."""
    found = [fd(real=real, fake=fake, extractor_id=extractor_id, replicates=REPLICATES)]
    subset = min(KID_SUBSET, real.shape[0], fake.shape[0])
    if subset >= 2:
        found.append(
            kid(
                real=real, fake=fake, extractor_id=extractor_id, subset_size=subset,
                replicates=REPLICATES,
            )
        )  # fmt: skip
    if np.allclose(np.linalg.norm(real, axis=1), 1) and np.allclose(
        np.linalg.norm(fake, axis=1), 1
    ):
        found.append(cmmd(real=real, fake=fake, extractor_id=extractor_id, replicates=REPLICATES))
    if min(real.shape[0], fake.shape[0]) > PRDC_K:
        quality = prdc(real=real, fake=fake, extractor_id=extractor_id, replicates=REPLICATES)
        found += [quality.precision, quality.recall, quality.density, quality.coverage]
    return found


# Orientation of each set metric: what "better" means for a generator.
LOWER_IS_BETTER = {"fd": True, "kid": True, "cmmd": True}


def compute_set_metrics(
    *, study: Study, reference_set: ReferenceSet, extractor_name: str, run: MetricRun | None = None
) -> int:
    """Set metrics of every system of the study against the reference set, with the named
    extractor; returns how many values were stored (each replaces the previous value of
    its system, metric and extractor)."""
    if reference_set.study_id != study.pk:
        raise MetricsError("The reference set belongs to another study.")
    extractor = get_extractor(extractor_name)
    images = list(reference_set.images.order_by("pk"))
    if len(images) < 2:
        raise MetricsError(
            f"The reference set {reference_set.name!r} has {len(images)} image(s); a set "
            "metric needs at least 2 (FID is only meaningful with thousands)."
        )
    real = reference_features(images, extractor)
    written = 0
    for system in study.systems.order_by("pk"):
        outputs = list(Asset.objects.outputs().filter(system=system).order_by("pk"))
        if len(outputs) < 2:
            continue
        fake = asset_features(outputs, extractor)
        values = set_metrics(real, fake, extractor.id)
        with transaction.atomic():
            for value in values:
                _store(study, system, value, extractor, run)
                written += 1
    if written:
        metrics_changed.send(sender=MetricValue, study_id=study.pk)
    return written


def _store(study: Study, system: Any, value: SetMetric, extractor: Extractor, run: Any) -> None:
    notes = list(value.notes)
    if value.interval_reason:
        notes.append(value.interval_reason)
    bounded = value.value is not None and value.low is not None and value.high is not None
    # Resampling images with repeats shrinks the covariance's rank and moves the statistic
    # (FD up): with few images the whole interval can miss the value.
    if bounded and not value.low <= value.value <= value.high:  # type: ignore[operator]
        notes.append(
            "the bootstrap interval does not contain the value: resampled sets carry "
            "repeated images, which bias this metric at this sample size; read the "
            "interval as spread, not as a confidence interval"
        )
    if not extractor.comparable:
        notes.append(f"{extractor.id}: not comparable to published values")
    MetricValue.objects.update_or_create(
        system=system,
        metric=value.metric,
        extractor=extractor.id,
        defaults={
            "study": study,
            "value": value.value,
            "lower_is_better": LOWER_IS_BETTER.get(value.metric, False),
            "low": value.low,
            "high": value.high,
            "n_fake": value.n_fake,
            "n_real": value.n_real,
            "dim": value.dim,
            "method": value.method,
            "notes": notes,
            "replicates": list(value.samples),
            "source": Source.COMPUTED,
            "run": run,
        },
    )


def compute_measures(*, study: Study, run: MetricRun | None = None) -> int:
    """Every per-asset measure of every output of the study; returns how many values were
    stored (replacing earlier ones), one INSERT per batch of outputs."""
    orientation = {m.name: m.lower_is_better for m in MEASURES}
    outputs = Asset.objects.outputs().filter(system__study=study).order_by("pk")
    written = 0
    for batch in batches(outputs.iterator(chunk_size=200), 200):
        rows = [
            AssetMeasure(
                asset=asset, measure=name, value=value, lower_is_better=orientation[name],
                source=Source.COMPUTED, run=run,
            )
            for asset in batch
            for name, value in measure_image(decode_rgb(_read(asset.file))).items()
        ]  # fmt: skip
        AssetMeasure.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["asset", "measure"],
            update_fields=["value", "lower_is_better", "source", "run", "updated_at"],
        )
        written += len(rows)
    if written:
        metrics_changed.send(sender=AssetMeasure, study_id=study.pk)
    return written
