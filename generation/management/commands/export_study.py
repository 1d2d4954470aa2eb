import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from generation.definitions import SCHEMA, export_definition, to_yaml
from studies.management.lookup import study_by_slug


class Command(BaseCommand):
    help = (
        "Write a study's design as a study file (YAML) that apply_study takes back; "
        "--schema writes the files' JSON Schema instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help="The study's slug.")
        parser.add_argument("-o", "--output", help="Write to this file (default: stdout).")
        parser.add_argument("--schema", action="store_true", help="Write the JSON Schema.")

    def handle(self, *args: object, **options: object) -> None:
        if options["schema"]:
            text = json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"
        else:
            if not options["slug"]:
                self.stderr.write("Give the study's slug (or --schema).")
                raise SystemExit(2)
            text = to_yaml(export_definition(study_by_slug(str(options["slug"]))))
        if options["output"]:
            Path(str(options["output"])).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
