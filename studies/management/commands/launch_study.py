from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import lifecycle
from studies.exceptions import StudyError
from studies.management.lookup import study_by_slug
from studies.models import StudyStatus


class Command(BaseCommand):
    help = (
        "Open a ready (or paused) study to raters, as the admin action does; --pilot opens "
        "it to its pilot raters only. Safe to rerun."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--pilot", action="store_true", help="Launch a pilot (up to the study's pilot raters)."
        )

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        target = StudyStatus.PILOT if options["pilot"] else StudyStatus.LIVE
        if study.status == target:
            self.stdout.write(f"{study.name!r} is already {study.get_status_display().lower()}.")
            return
        try:
            if options["pilot"]:
                lifecycle.launch_pilot(study=study)
            else:
                lifecycle.launch_study(study=study)
        except StudyError as exc:
            raise CommandError(str(exc)) from None
        if options["pilot"]:
            self.stdout.write(f"{study.name!r} is piloting with up to {study.pilot_raters} raters.")
        else:
            self.stdout.write(f"{study.name!r} is live.")
