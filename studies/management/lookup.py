"""What the management commands of every app share."""

from django.core.management.base import CommandError

from studies.models import Study


def study_by_slug(slug: object) -> Study:
    """The study a command names, or the error a person at the terminal should see."""
    study = Study.objects.filter(slug=str(slug)).first()
    if study is None:
        raise CommandError(f"No study with slug {str(slug)!r}.")
    return study
