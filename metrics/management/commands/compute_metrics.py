"""Compute or import a study's metric values from the command line."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.core.metric_files import MetricFileError
from metrics import imports, runs
from metrics.demo import seed_demo_reference
from metrics.extractors import EXTRACTORS
from metrics.models import ReferenceSet, RunKind, RunStatus
from studies.models import Study


class Command(BaseCommand):
    help = (
        "Compute per-asset measures and/or set metrics of a study's outputs, or import a "
        "metrics CSV. Runs here unless --queue sends the work to the gpu workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--measures", action="store_true", help="per-asset measures")
        parser.add_argument(
            "--set-metrics", metavar="EXTRACTOR", choices=sorted(EXTRACTORS),
            help="FD, KID, CMMD, precision/recall against --reference with this extractor",
        )  # fmt: skip
        parser.add_argument("--reference", metavar="NAME", help="the reference set's name")
        parser.add_argument(
            "--demo-reference", action="store_true",
            help="create the demo's reference set (synthetic clean renders) and use it",
        )  # fmt: skip
        parser.add_argument("--import-csv", metavar="PATH", type=Path)
        parser.add_argument("--queue", action="store_true", help="queue on the gpu workers")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"No study with the slug {options['slug']!r}.")
        if options["import_csv"]:
            path: Path = options["import_csv"]
            try:
                written = imports.import_metric_csv(
                    study=study, data=path.read_bytes(), name=str(path)
                )
            except OSError as exc:
                raise CommandError(f"{path}: cannot be read ({exc.strerror})") from None
            except MetricFileError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{written} value(s) imported from {path}.")
        reference = None
        if options["demo_reference"]:
            reference = seed_demo_reference(study)
        elif options["reference"]:
            reference = ReferenceSet.objects.filter(study=study, name=options["reference"]).first()
            if reference is None:
                names = (
                    ", ".join(
                        ReferenceSet.objects.filter(study=study).values_list("name", flat=True)
                    )
                    or "none"
                )
                raise CommandError(f"No reference set {options['reference']!r} (sets: {names}).")
        wanted = []
        if options["measures"]:
            wanted.append((RunKind.ASSET, ""))
        if options["set_metrics"]:
            if reference is None:
                raise CommandError("--set-metrics needs --reference NAME or --demo-reference.")
            wanted.append((RunKind.SET, options["set_metrics"]))
        for kind, extractor in wanted:
            run = runs.request_run(
                study=study, kind=kind, extractor=extractor, reference_set=reference
            ) if options["queue"] else runs.create_run(
                study=study, kind=kind, extractor=extractor, reference_set=reference
            )  # fmt: skip
            if options["queue"]:
                self.stdout.write(f"{run} queued.")
                continue
            done = runs.execute_run(run_id=run.pk)
            assert done is not None
            if done.status != RunStatus.DONE:
                raise CommandError(f"{done} failed: {done.message}")
            self.stdout.write(f"{done}: {done.values_written} value(s) stored.")
