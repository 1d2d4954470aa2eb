"""Write a study's agreement report as HTML, PDF, zip or report.json."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import QueryDict

from analysis.reports import ReportOptions, build_report, read_report
from reports.document import BadBounds, read_bounds, report_json
from reports.realness import realness_json
from reports.render import PdfUnavailable, render_html, render_pdf, render_zip
from studies.management.lookup import study_by_slug


class Command(BaseCommand):
    help = (
        "Export a study's agreement report from its stored analysis (built here first when "
        "there is none or it is stale). Formats: html, pdf, zip (data bundle), json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--format", choices=("html", "pdf", "zip", "json"), required=True)
        parser.add_argument("--out", type=Path, required=True, help="file to write")
        parser.add_argument("--criterion", help="criterion key (default: the study's first)")
        parser.add_argument("--exclude-simulated", action="store_true")
        parser.add_argument("--exclude-flagged", action="store_true")
        parser.add_argument("--budget", help="decision view: cost per image at most")
        parser.add_argument("--latency", help="decision view: median seconds at most")

    def handle(self, *args: Any, **options: Any) -> None:
        study = study_by_slug(options["slug"])
        criteria = list(study.criteria.order_by("order", "pk").values_list("key", flat=True))
        key = options["criterion"] or (criteria[0] if criteria else None)
        if key is not None and key not in criteria:
            raise CommandError(f"{study.slug} has no criterion {key!r} (it has {criteria}).")
        wanted = ReportOptions(
            criterion=key,
            include_simulated=not options["exclude_simulated"],
            exclude_flagged=options["exclude_flagged"],
        )
        params = QueryDict(mutable=True)
        for name in ("budget", "latency"):
            if options[name] is not None:
                params[name] = options[name]
        try:
            bounds = read_bounds(params)
        except BadBounds as exc:
            raise CommandError(str(exc)) from None
        state = read_report(study=study, options=wanted)
        if state.report is None or state.stale:
            self.stderr.write("Building the report first (none stored, or stale).")
            build_report(study=study, options=wanted)
            state = read_report(study=study, options=wanted)
        # A real-or-generated study's analysis, or a pairwise one.
        analysis = state.realness or state.analysis
        if analysis is None or state.report is None:
            message = state.report.message if state.report else "no report"
            raise CommandError(f"Nothing to export: {message}")
        found: dict[str, Any] = {"study": study, "report": state.report, "analysis": analysis}
        out: Path = options["out"]
        try:
            if options["format"] == "html":
                out.write_text(render_html(**found, bounds=bounds), encoding="utf-8")
            elif options["format"] == "pdf":
                out.write_bytes(render_pdf(**found, bounds=bounds))
            elif options["format"] == "zip":
                with render_zip(**found, bounds=bounds) as data, out.open("wb") as target:
                    target.write(data.read())
            else:
                document = (
                    realness_json(state.report, state.realness)
                    if state.realness is not None
                    else report_json(state.report, analysis, bounds)  # type: ignore[arg-type]
                )
                out.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
        except PdfUnavailable as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"{out}: cannot be written ({exc.strerror}).") from None
        self.stdout.write(f"Wrote {out} ({out.stat().st_size} bytes).")
