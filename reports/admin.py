"""Reports' piece of the study admin: links to the agreement report in its three forms
(config/admin.py composes the pieces)."""

from django.urls import reverse

from studies.admin import StudyAdmin
from studies.models import Study


class ReportsStudyAdmin(StudyAdmin):
    def object_links(self, study: Study) -> list[tuple[str, str]]:
        forms = (("Report", "report"), ("PDF", "report-pdf"), ("Data zip", "report-zip"))
        links = [(label, reverse(name, args=[study.slug])) for label, name in forms]
        return [*super().object_links(study), *links]
