from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.backups import BackupError, backup


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump, or SQLite's online backup) and every stored media "
        "file into a new folder under DESTINATION, with a manifest of row counts and "
        "file hashes that `restore` checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("destination", type=Path)

    def handle(self, *args: object, **options: object) -> None:
        try:
            made = backup(destination=options["destination"])  # type: ignore[arg-type]
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        rows = sum(made.manifest["tables"].values())
        files = len(made.manifest["media"])
        self.stdout.write(f"Backed up {rows} rows and {files} media files to {made.folder}.")
