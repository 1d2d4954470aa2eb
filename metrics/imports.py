"""Bringing values in: reference images through the media ingest, and metric values
computed elsewhere from a CSV.

Reference images go through the same ingest as every generated medium (generation.ingest:
checked, metadata stripped, re-encoded as PNG), so both sides of a set metric are decoded
from the same kind of bytes. This is the one place metrics imports generation: the ingest
is the media boundary every upload must cross (a deviation from DESIGN.md's arrows,
noted there).
"""

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from analysis.core.metric_files import MetricFileError, parse_metric_bytes
from generation.exceptions import IngestError
from generation.ingest import ingest_image
from metrics.models import (
    AssetMeasure,
    MetricRun,
    MetricValue,
    ReferenceImage,
    ReferenceSet,
    Source,
)
from metrics.signals import metrics_changed
from studies.models import Asset, Study
from studies.signals import after_commit

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
MAX_ZIP_MEMBERS = 100_000


@dataclass
class ReferenceUpload:
    """What an upload added, skipped as a duplicate, and refused (file: why)."""

    added: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)


def zip_members(archive: zipfile.ZipFile) -> Iterator[tuple[str, bytes | str]]:
    """The image files of an open zip archive, as (name, bytes), folders and other files
    left out; a member too large to read is (name, the reason) instead."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise IngestError(f"the archive holds {len(infos):,} files, above {MAX_ZIP_MEMBERS:,}")
    for info in infos:
        name = PurePosixPath(info.filename)
        if name.suffix.lower() not in IMAGE_SUFFIXES or name.name.startswith("."):
            continue
        if info.file_size > settings.INGEST_MAX_BYTES:
            yield (
                info.filename,
                (
                    f"{info.file_size:,} bytes unpacked, above the limit of "
                    f"{settings.INGEST_MAX_BYTES:,}"
                ),
            )
            continue
        yield info.filename, archive.read(info)


def add_reference_images(
    *, reference_set: ReferenceSet, files: Iterable[tuple[str, bytes | str]]
) -> ReferenceUpload:
    """Ingest each (name, bytes) into the reference set. A file ingest refuses (or a
    (name, reason) pair) is listed with the reason and the others are kept; the same
    picture twice is stored once."""
    result = ReferenceUpload()
    for name, data in files:
        if isinstance(data, str):
            result.refused.append(f"{name}: {data}")
            continue
        try:
            media = ingest_image(data)
        except IngestError as exc:
            result.refused.append(f"{name}: {exc}")
            continue
        if ReferenceImage.objects.filter(reference_set=reference_set, sha256=media.sha256).exists():
            result.duplicates += 1
            continue
        image = ReferenceImage(
            reference_set=reference_set,
            original_name=name[:255],
            width=media.width,
            height=media.height,
            byte_size=len(media.data),
            sha256=media.sha256,
        )
        image.file.save("reference.png", ContentFile(media.data), save=False)
        try:
            with transaction.atomic():
                image.save()
        except IntegrityError:  # the same picture, added concurrently
            image.file.delete(save=False)
            result.duplicates += 1
            continue
        result.added += 1
    # Nothing downstream changes until set metrics are computed against the new images.
    return result


@transaction.atomic
def import_metric_csv(*, study: Study, data: bytes, name: str, run: MetricRun | None = None) -> int:
    """Store the values of a metrics CSV (per system, or per asset by public id) in the
    study; returns how many. Nothing is stored when any row cannot be matched: the
    MetricFileError names the metric and the system or asset."""
    parsed = parse_metric_bytes(data, name, allow_assets=True)
    systems = {s.name: s for s in study.systems.all()}
    written = 0
    for metric in parsed:
        unknown = sorted({*metric.values, *metric.asset_systems.values()} - set(systems))
        if unknown:
            raise MetricFileError(
                f"{name}: metric {metric.name!r} names systems this study does not have: "
                f"{', '.join(map(repr, unknown))} (its systems: {', '.join(sorted(systems))})"
            )
        for system_name, value in metric.values.items():
            MetricValue.objects.update_or_create(
                system=systems[system_name],
                metric=metric.name,
                extractor="",
                defaults={
                    "study": study,
                    "value": value,
                    "lower_is_better": metric.lower_is_better,
                    "n_fake": metric.n.get(system_name),
                    "low": None,
                    "high": None,
                    "replicates": [],
                    "notes": [f"imported from {name}"],
                    "source": Source.IMPORTED,
                    "run": run,
                },
            )
            written += 1
        if metric.assets:
            assets = {
                a.public_id: a
                for a in Asset.objects.filter(
                    system__study=study, public_id__in=list(metric.assets)
                ).select_related("system")
            }
            missing = sorted(set(metric.assets) - set(assets))
            if missing:
                raise MetricFileError(
                    f"{name}: metric {metric.name!r}: no asset of this study has the id "
                    f"{', '.join(map(repr, missing[:5]))}"
                    + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
                    + " (use the public ids of the study's export)"
                )
            wrong = [
                key for key, system in metric.asset_systems.items()
                if assets[key].system.name != system
            ]  # fmt: skip
            if wrong:
                key = wrong[0]
                raise MetricFileError(
                    f"{name}: metric {metric.name!r}: asset {key!r} belongs to "
                    f"{assets[key].system.name!r}, not {metric.asset_systems[key]!r}"
                )
            AssetMeasure.objects.bulk_create(
                [
                    AssetMeasure(
                        asset=assets[key],
                        measure=metric.name,
                        value=value,
                        lower_is_better=metric.lower_is_better,
                        source=Source.IMPORTED,
                        run=run,
                    )
                    for key, value in metric.assets.items()
                ],  # fmt: skip
                update_conflicts=True,
                unique_fields=["asset", "measure"],
                update_fields=["value", "lower_is_better", "source", "run", "updated_at"],
            )
            written += len(metric.assets)
    # The values are stored: a listener that fails (the report refresh not queued) must
    # not make the import look failed.
    after_commit(metrics_changed.send, sender=MetricValue, study_id=study.pk)
    return written
