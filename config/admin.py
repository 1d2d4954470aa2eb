"""The study admin, composed once from each app's piece, and registered here: the one
module that sees every app. Each piece adds its inlines, URLs, page links and buttons
cooperatively; the actions on the study list are listed here, in the order shown."""

from django.contrib import admin

from analysis.admin import AnalysisStudyAdmin
from generation.admin import GenerationStudyAdmin
from metrics.admin import MetricsStudyAdmin
from reports.admin import ReportsStudyAdmin
from studies.models import Study


@admin.register(Study)
class StudyAdmin(ReportsStudyAdmin, AnalysisStudyAdmin, MetricsStudyAdmin, GenerationStudyAdmin):
    actions = [
        "generate_media",
        "launch_pilot",
        "launch",
        "discard_pilot",
        "pause",
        "close",
        "duplicate",
        "export_votes",
    ]
