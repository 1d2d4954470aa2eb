from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.definitions import DefinitionError, apply_definition, read_definition


class Command(BaseCommand):
    help = (
        "Create or update a study from a study file (YAML, schemas/study.schema.json): all "
        "of it or nothing. Applying the same file again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The study file (.yaml).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and list the changes only."
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            data = read_definition(Path(str(options["file"])))
            applied = apply_definition(data, dry_run=bool(options["dry_run"]))
        except DefinitionError as exc:
            problems = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"Nothing applied; the file has problems:\n{problems}") from None
        prefix = "Would apply" if options["dry_run"] else "Applied"
        if not applied.changes:
            self.stdout.write(f"Study {applied.study.slug!r}: no changes.")
            return
        self.stdout.write(f"{prefix} to study {applied.study.slug!r}:")
        for change in applied.changes:
            self.stdout.write(f"  - {change}")
