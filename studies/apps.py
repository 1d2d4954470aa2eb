from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _content_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # What a served pair shows is cached per study version (studies.content).
    from studies import content

    study_id = content.study_of(instance)
    if study_id is not None:
        content.bump(study_id)


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = "Studies"

    def ready(self) -> None:
        from studies.models import Asset, Criterion, KnownPair, Prompt

        for model in (Asset, Prompt, Criterion, KnownPair):
            uid = f"studies.content.{model.__name__}"
            post_save.connect(_content_changed, sender=model, dispatch_uid=f"{uid}.save")
            post_delete.connect(_content_changed, sender=model, dispatch_uid=f"{uid}.delete")
