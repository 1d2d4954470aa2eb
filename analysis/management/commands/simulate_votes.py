from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.simulated import add_simulated_votes
from studies.exceptions import StudyError
from studies.management.lookup import study_by_slug
from studies.models import RaterSource, StudyStatus


class Command(BaseCommand):
    help = (
        "Add simulated raters' votes to a live study, through the real scheduler, so its "
        "leaderboard fills. They are marked 'simulated' and can be left out of analyses."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--raters", type=int, default=20, help="simulated raters (default 20)")
        parser.add_argument(
            "--strength",
            action="append",
            default=[],
            metavar="SYSTEM=LOG_STRENGTH",
            help="true log-strength of a system (repeat; others count as 0)",
        )
        parser.add_argument("--careless", type=float, default=0.1, help="share answering at random")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--if-fewer-than",
            type=int,
            default=None,
            help="do nothing if the study already has this many simulated raters",
        )

    def handle(self, *args: object, **options: object) -> None:
        study = study_by_slug(options["slug"])
        if study.status != StudyStatus.LIVE:
            raise CommandError(f"{study.name!r} is not live; launch it first.")
        strengths = {}
        for item in options["strength"]:  # type: ignore[attr-defined]
            name, _, value = str(item).rpartition("=")
            try:
                strengths[name] = float(value)
            except ValueError:
                raise CommandError(f"--strength {item!r}: expected SYSTEM=NUMBER") from None
        unknown = set(strengths) - set(study.systems.values_list("name", flat=True))
        if unknown:
            raise CommandError(f"--strength names unknown systems: {sorted(unknown)}")
        limit = options["if_fewer_than"]
        existing = study.raters.filter(source=RaterSource.SIMULATED).count()
        if limit is not None and existing >= int(limit):  # type: ignore[call-overload]
            self.stdout.write(f"{study.slug} already has {existing} simulated raters; none added.")
            return
        try:
            run = add_simulated_votes(
                study=study,
                strengths=strengths,
                n_raters=int(options["raters"]),  # type: ignore[call-overload]
                careless_share=float(options["careless"]),  # type: ignore[arg-type]
                seed=options["seed"],  # type: ignore[arg-type]
            )
        except StudyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Added {run.votes} votes from {run.raters} simulated raters to {study.slug}."
        )
