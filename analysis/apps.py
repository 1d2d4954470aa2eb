from typing import Any

from django.apps import AppConfig


def _study_changed(sender: Any, *, study_id: int, **kwargs: Any) -> None:
    from analysis.reports import schedule_refresh

    schedule_refresh(study_id=study_id)


def _votes_recorded(sender: Any, *, study_id: int, **kwargs: Any) -> None:
    from analysis import selection

    _study_changed(sender, study_id=study_id)
    selection.schedule_refresh(study_id=study_id)


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self) -> None:
        # studies may not import analysis: it announces votes, this app listens.
        from studies.signals import votes_recorded

        votes_recorded.connect(_votes_recorded, dispatch_uid="analysis.refresh_reports")
        # Likewise metrics: new metric values make the reports that use them stale.
        from metrics.signals import metrics_changed

        metrics_changed.connect(_study_changed, dispatch_uid="analysis.refresh_on_metrics")
