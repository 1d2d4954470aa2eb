from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation import jobs
from generation.exceptions import GenerationError
from studies.exceptions import StudyError
from studies.management.lookup import study_by_slug


class Command(BaseCommand):
    help = "Queue generation of the media a study still lacks (same as the admin action)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        try:
            job = jobs.start_generation(study=study)
        except (GenerationError, StudyError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Generation job #{job.pk}: {job.expected} item(s) queued.")
