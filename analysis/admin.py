"""Analysis' piece of the study admin: a link to the leaderboard (config/admin.py composes
the pieces)."""

from django.urls import reverse

from studies.admin import StudyAdmin
from studies.models import Study


class AnalysisStudyAdmin(StudyAdmin):
    def object_links(self, study: Study) -> list[tuple[str, str]]:
        url = reverse("leaderboard", args=[study.slug])
        return [*super().object_links(study), ("Leaderboard", url)]
