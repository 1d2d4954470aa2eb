from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from generation import demo


class Command(BaseCommand):
    help = (
        "Create the demo studies (images: 4 synthetic systems, 12 prompts in 3 categories, 2 "
        "criteria; videos: 4 synthetic systems, 6 prompts; real or generated: 3 systems and "
        "a real set, 8 prompts) and an admin user, and queue "
        "generation of their media. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-generate", action="store_true", help="Do not queue generation.")
        parser.add_argument(
            "--links-only", action="store_true", help="Seed nothing; print the links and login."
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--known-pairs",
            action="store_true",
            help="Seed nothing else; add practice material for prompt match from the "
            "generated media (run once generation is done).",
        )

    def handle(self, *args: object, **options: object) -> None:
        admin = demo.ensure_demo_admin()
        if options["links_only"]:
            self._links(str(options["base_url"]).rstrip("/"), admin)
            return
        if options["known_pairs"]:
            study = demo.demo_study()
            added = demo.add_known_pairs(study) if study is not None else 0
            self.stdout.write(f"Known pairs for prompt match: {added} added.")
            return
        for seed, media in (
            (demo.seed_demo_study, "images"),
            (demo.seed_video_demo_study, "videos"),
            (demo.seed_realness_demo_study, "images"),
        ):
            seeded = seed(generate=not options["no_generate"])
            study = seeded.study
            self.stdout.write(
                f"Demo study {study.name!r} ({study.slug}): "
                + ("created." if seeded.created else "already there, nothing seeded twice.")
            )
            if seeded.job is not None:
                self.stdout.write(
                    f"Generation job #{seeded.job.pk} queued: {seeded.job.expected} {media}."
                )

    def _links(self, base: str, admin: demo.DemoAdmin) -> None:
        lines = [
            "",
            "Verdict demo is ready.",
            f"  Admin login:   {base}{reverse('admin:index')}  user {admin.username!r}, "
            f"password {admin.password!r}",
        ]
        studies = (demo.demo_study(), demo.video_demo_study(), demo.realness_demo_study())
        for study in studies:
            if study is None:
                continue
            lines.append(f"  {study.name}:")
            admin_page = reverse("admin:studies_study_change", args=[study.pk])
            lines.append(f"    Study page:    {base}{admin_page}")
            lines.append(f"    Rater link:    {base}{study.get_absolute_url()}")
            if not study.is_realness:  # a real-or-generated study has no pairwise ranking
                leaderboard = reverse("leaderboard", args=[study.slug])
                lines.append(f"    Leaderboard:   {base}{leaderboard}")
            report = reverse("report", args=[study.slug])
            lines.append(f"    Report:        {base}{report}  (PDF and data zip linked from it)")
        lines.append("")
        self.stdout.write("\n".join(lines))
