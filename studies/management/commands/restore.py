from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.backups import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore a folder made by `backup` into the configured database and media folder, "
        "both empty, then check every table's row count and every file's hash."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path)

    def handle(self, *args: object, **options: object) -> None:
        try:
            manifest = restore(source=options["source"])  # type: ignore[arg-type]
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            f"Restored {rows} rows in {len(manifest['tables'])} tables and "
            f"{len(manifest['media'])} media files; every count and hash matches."
        )
