"""The study admin gains a link to the leaderboard."""

from django.contrib import admin

from studies.models import Study

# The study admin as the other apps left it (studies, then generation).
_Base = type(admin.site.get_model_admin(Study))
admin.site.unregister(Study)


@admin.register(Study)
class StudyAdmin(_Base):  # type: ignore[valid-type, misc]
    change_form_template = "admin/analysis/study_change_form.html"
