from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from generation.recovery import requeue_stalled, sweep_orphan_media


class Command(BaseCommand):
    help = (
        "After faults: send again the pending items of generation jobs that made no "
        "progress for --quiet minutes, and delete stored media files no row names that are "
        "older than --grace hours. Safe to run any time (cron, or a periodic task)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", type=float, default=30.0, help="minutes (default 30)")
        parser.add_argument("--grace", type=float, default=24.0, help="hours (default 24)")
        parser.add_argument(
            "--dry-run", action="store_true", help="list orphaned files, delete nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        requeued = requeue_stalled(quiet_for=timedelta(minutes=float(options["quiet"])))  # type: ignore[arg-type]
        self.stdout.write(f"Stalled jobs: {requeued.jobs}; items sent again: {requeued.items}.")
        orphans = sweep_orphan_media(
            older_than=timedelta(hours=float(options["grace"])),  # type: ignore[arg-type]
            dry_run=bool(options["dry_run"]),
        )
        verb = "would be deleted" if options["dry_run"] else "deleted"
        self.stdout.write(f"Orphaned media files {verb}: {len(orphans)}.")
        for name in orphans:
            self.stdout.write(f"  {name}")
