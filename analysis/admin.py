"""Analysis' piece of the study admin: a link to the leaderboard and the rater dashboard
(config/admin.py composes the pieces)."""

import csv
import io
import statistics

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from analysis.pilot import pilot_summary
from analysis.raters_view import APPROVE, REJECT, REVIEW, flags_awaiting_review, rater_rows
from studies.admin import StudyAdmin
from studies.models import Study


class AnalysisStudyAdmin(StudyAdmin):
    def object_links(self, study: Study) -> list[tuple[str, str]]:
        links = [
            ("Leaderboard", reverse("leaderboard", args=[study.slug])),
            ("Raters", reverse("admin:studies_study_raters", args=[study.pk])),
        ]
        return [*super().object_links(study), *links]

    def object_panels(self, study: Study) -> list[tuple[str, list[str]]]:
        summary = pilot_summary(study=study)
        panels = [(summary.title, summary.lines())] if summary is not None else []
        return [*super().object_panels(study), *panels]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:study_id>/raters/",
                self.admin_site.admin_view(self.raters_view),
                name="studies_study_raters",
            )
        ]
        return own + super().get_urls()

    def raters_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        """Each rater's progress and quality; ?prolific=approve|review|reject downloads
        that list of participant ids for Prolific's bulk actions."""
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            return HttpResponse(status=403)
        rows = rater_rows(study=study)
        wanted = request.GET.get("prolific")
        if wanted in (APPROVE, REVIEW, REJECT):
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["participant_id", "outcome", "flags"])
            for row in rows:
                if row.decision == wanted:
                    writer.writerow([row.rater.external_id, row.rater.outcome, " ".join(row.flags)])
            response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
            name = f"{study.slug}-prolific-{wanted}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        times = [row.median_ms for row in rows if row.median_ms is not None]
        counts = {d: sum(row.decision == d for row in rows) for d in (APPROVE, REVIEW, REJECT)}
        context = {
            **self.admin_site.each_context(request),
            "title": f"Raters of {study.name}",
            "study": study,
            "opts": self.model._meta,
            "rows": rows,
            "median_ms": statistics.median(times) if times else None,
            "finished": sum(bool(row.rater.outcome) for row in rows),
            "prolific_counts": counts,
            "flags_waiting": flags_awaiting_review(study=study),
            "flags_url": reverse("admin:studies_flag_changelist")
            + f"?assignment__study__id__exact={study.pk}&decision__exact=",
        }
        return TemplateResponse(request, "admin/studies/study/raters.html", context)
