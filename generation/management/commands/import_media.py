from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation import imports
from generation.exceptions import GenerationError
from studies.exceptions import StudyError
from studies.management.lookup import study_by_slug


class Command(BaseCommand):
    help = (
        "Import existing outputs from a folder or zip with manifest.csv "
        "(file, system, prompt, seed[, category]) into a study."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("path", help="Folder or .zip holding manifest.csv and the files.")

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        try:
            path = imports.server_path(str(options["path"]))
            job = imports.import_media(study=study, path=path)
        except (GenerationError, StudyError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Import job #{job.pk}: {job.expected} file(s) queued.")
