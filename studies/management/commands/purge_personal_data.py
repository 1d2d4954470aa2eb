"""Delete raters' personal data past each study's retention period (run it daily)."""

from typing import Any

from django.core.management.base import BaseCommand

from studies.raters import purge_expired_personal_data


class Command(BaseCommand):
    help = "Delete raters' personal data past their study's retention period; votes stay."

    def handle(self, *args: Any, **options: Any) -> None:
        cleared = purge_expired_personal_data()
        self.stdout.write(f"Personal data deleted for {cleared} rater(s).")
