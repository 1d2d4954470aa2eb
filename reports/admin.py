"""The study admin gains links to the agreement report in its three forms."""

from django.contrib import admin

from studies.models import Study

# The study admin as the other apps left it (studies, generation, metrics, analysis).
_Base = type(admin.site.get_model_admin(Study))
admin.site.unregister(Study)


@admin.register(Study)
class StudyAdmin(_Base):  # type: ignore[valid-type, misc]
    change_form_template = "admin/reports/study_change_form.html"
