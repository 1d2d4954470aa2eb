import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.models import GenerationJob, JobStatus
from studies.management.lookup import study_by_slug
from studies.models import Asset


class Command(BaseCommand):
    help = "Wait until the study's generation jobs have finished, printing their progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--timeout", type=float, default=600, help="Seconds (default 600).")

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        deadline = time.monotonic() + float(options["timeout"])  # type: ignore[arg-type]
        last = None
        while True:
            open_jobs = list(GenerationJob.objects.unfinished().filter(study=study))
            for job in open_jobs:
                line = f"job #{job.pk}: {job.done}/{job.expected} done, {job.failed} failed"
                if line != last:
                    self.stdout.write(line)
                    last = line
            if not open_jobs:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    "Generation did not finish in time. Is a worker running? "
                    "(celery -A config worker -Q default,gpu)"
                )
            time.sleep(0.5)
        latest = GenerationJob.objects.filter(study=study).first()
        if latest is not None and latest.status == JobStatus.FAILED:
            raise CommandError(f"Job #{latest.pk} finished with failures: {latest.error}")
        made = Asset.objects.outputs().filter(system__study=study).count()
        self.stdout.write(f"Generation finished: {made} outputs in {study.slug}.")
