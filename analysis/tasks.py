"""Celery tasks: thin wrappers over analysis.reports and analysis.selection."""

from typing import Any

from celery import shared_task

from analysis import reports
from studies.models import Study


@shared_task(name="analysis.build_report")
def build_report(study_id: int, options: dict[str, Any]) -> None:
    study = Study.objects.filter(pk=study_id).first()
    if study is not None:  # deleted since: nothing to build
        reports.build_report(study=study, options=reports.ReportOptions(**options))


@shared_task(name="analysis.refresh_reports")
def refresh_reports(study_id: int) -> None:
    study = Study.objects.filter(pk=study_id).first()
    if study is not None:
        reports.refresh_reports(study=study)


@shared_task(name="analysis.refresh_selection")
def refresh_selection(study_id: int) -> None:
    from analysis.selection import refresh_strides

    study = Study.objects.filter(pk=study_id).first()
    if study is not None:
        refresh_strides(study=study)
