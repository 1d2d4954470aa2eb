from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.reports import ReportOptions, build_report
from studies.management.lookup import study_by_slug


class Command(BaseCommand):
    help = (
        "Build and store a study's analysis report now, for each criterion (or one), with "
        "simulated raters included and excluded: what the leaderboard page and API show."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--criterion", help="only this criterion (its key)")

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(str(options["slug"]))
        keys: list[str | None] = list(
            study.criteria.order_by("order", "pk").values_list("key", flat=True)
        )
        if options["criterion"]:
            if options["criterion"] not in keys:
                raise CommandError(f"{study.slug} has no criterion {options['criterion']!r}.")
            keys = [str(options["criterion"])]
        for key in keys or [None]:
            for include_simulated in (True, False):
                report = build_report(
                    study=study,
                    options=ReportOptions(criterion=key, include_simulated=include_simulated),
                )
                self.stdout.write(
                    f"{study.slug} / {key or 'all'} / simulated "
                    f"{'included' if include_simulated else 'excluded'}: {report.status}, "
                    f"{report.votes_used} votes, {report.build_seconds or 0:.2f} s"
                )
