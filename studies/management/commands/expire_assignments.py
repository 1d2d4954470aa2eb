from django.core.management.base import BaseCommand

from studies.assignments import sweep_expired
from studies.models import Study


class Command(BaseCommand):
    help = "Give pairs that raters left unanswered past their deadline back to the pool."

    def handle(self, *args: object, **options: object) -> None:
        for study in Study.objects.open_to_raters():
            expired = sweep_expired(study=study)
            self.stdout.write(f"{study.slug}: {expired} pair(s) expired.")
