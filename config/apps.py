"""The admin of the whole site: Django's, with the study admin composed after every app
has registered its own models (config/admin.py)."""

from django.contrib.admin.apps import AdminConfig


class VerdictAdminConfig(AdminConfig):
    default_site = "config.admin_site.VerdictAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscover: each app's admin.py
        import config.admin  # noqa: F401  (registers the composed study admin)
