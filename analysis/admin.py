"""Analysis' piece of the study admin: links to the leaderboard, the rater dashboard and
the planner, and the pilot's and the stopping signal's panels (config/admin.py composes
the pieces)."""

import csv
import io
import statistics

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from analysis.pilot import pilot_summary
from analysis.planner import PlanForm, fitted_gaps, plan_study, separation_panel
from analysis.raters_view import APPROVE, REJECT, REVIEW, flags_awaiting_review, rater_rows
from studies.admin import StudyAdmin
from studies.models import Study


class AnalysisStudyAdmin(StudyAdmin):
    def object_links(self, study: Study) -> list[tuple[str, str]]:
        raters = ("Raters", reverse("admin:studies_study_raters", args=[study.pk]))
        if study.is_realness:  # no pairwise ranking to show or plan; the report has it all
            return [*super().object_links(study), raters]
        links = [
            ("Leaderboard", reverse("leaderboard", args=[study.slug])),
            raters,
            ("Plan", reverse("admin:studies_study_plan", args=[study.pk])),
        ]
        return [*super().object_links(study), *links]

    def object_panels(self, study: Study) -> list[tuple[str, list[str]]]:
        summary = pilot_summary(study=study)
        panels = [(summary.title, summary.lines())] if summary is not None else []
        if study.is_realness:
            return [*super().object_panels(study), *panels]
        signal = separation_panel(study=study)
        if signal is not None:
            panels.append(signal)
        return [*super().object_panels(study), *panels]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:study_id>/raters/",
                self.admin_site.admin_view(self.raters_view),
                name="studies_study_raters",
            ),
            path(
                "<int:study_id>/plan/",
                self.admin_site.admin_view(self.plan_view),
                name="studies_study_plan",
            ),
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

    def plan_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        """Votes, raters and cost to separate every adjacent pair of systems, for gaps
        the researcher expects (or the votes so far show); answered on GET with
        parameters, or POST."""
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            return HttpResponse(status=403)
        if study.is_realness:
            context = {
                **self.admin_site.each_context(request),
                "title": f"Plan for {study.name}",
                "study": study,
                "tool": "Plan",
                "purpose": "The plan counts the votes and raters that separate the systems "
                "of a pairwise study",
            }
            return TemplateResponse(request, "analysis/pairwise_only.html", context)
        systems = study.systems.count()
        fitted = fitted_gaps(study=study)
        data = request.POST if request.method == "POST" else request.GET
        initial = {"gaps": ", ".join(f"{g:g}" for g in fitted.gaps)} if fitted else {}
        bound = "gaps" in data and systems >= 2
        form = PlanForm(data if bound else None, initial=initial, systems=systems)
        plan = None
        if bound and form.is_valid():
            plan = plan_study(
                study=study,
                gaps=form.cleaned_data["gaps"],
                target=form.cleaned_data["power"],
                level=form.cleaned_data["level"],
                tie_strength=(fitted.tie_strength or 0.0) if fitted else 0.0,
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Plan for {study.name}",
            "study": study,
            "opts": self.model._meta,
            "systems": systems,
            "form": form,
            "fitted": fitted,
            "plan": plan,
        }
        return TemplateResponse(request, "admin/studies/study/plan.html", context)
