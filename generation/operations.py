"""What generation cost: per system, the figures its outputs' metadata and the job
items recorded, for the readiness view."""

from analysis.core.readiness import GenerationRecord
from generation.models import ItemStatus, JobItem
from studies.models import Asset, Study


def _number(meta: dict[str, object], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def generation_records(*, study: Study) -> list[GenerationRecord]:
    """Each system's seconds, GPU-seconds and peak memory per output (as its backend or
    the worker recorded them), and its job items: how many, failed, retried."""
    records = []
    for system in study.systems.order_by("pk"):
        metas = (
            Asset.objects.outputs()
            .filter(system=system)
            .values_list("generation_meta", "duration_s")
        )
        seconds, gpu, memory, media = [], [], [], []
        for meta, duration in metas:
            took = _number(meta, "seconds")
            if took is None:  # imported media: nothing is known about its making
                continue
            seconds.append(took)
            gpu.append(_number(meta, "gpu_seconds"))
            memory.append(_number(meta, "peak_gpu_memory_mb"))
            media.append(duration)
        items = JobItem.objects.filter(system=system)
        records.append(
            GenerationRecord(
                system=system.name,
                seconds=seconds,
                gpu_seconds=gpu,
                peak_memory_mb=memory,
                media_seconds=media,
                items=items.count(),
                failed=items.filter(status=ItemStatus.FAILED).count(),
                retried=items.filter(attempts__gt=1).count(),
                price_per_image=(
                    float(system.price_per_image) if system.price_per_image is not None else None
                ),
            )
        )
    return records
