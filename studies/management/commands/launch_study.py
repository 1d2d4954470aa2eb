from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import lifecycle
from studies.exceptions import StudyError
from studies.management.lookup import study_by_slug
from studies.models import StudyStatus


class Command(BaseCommand):
    help = "Open a ready (or paused) study to raters, as the admin action does. Safe to rerun."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        if study.status == StudyStatus.LIVE:
            self.stdout.write(f"{study.name!r} is already live.")
            return
        try:
            lifecycle.launch_study(study=study)
        except StudyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{study.name!r} is live.")
