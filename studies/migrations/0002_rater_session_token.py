"""Raters get a random session token: the session cookie carries it instead of the pk.

Three steps because a unique column with a callable default cannot be added to rows that
exist: add it nullable, give every rater its own token, then make it unique."""

from django.db import migrations, models

import studies.models


def fill_tokens(apps, schema_editor):  # type: ignore[no-untyped-def]
    Rater = apps.get_model("studies", "Rater")
    for rater in Rater.objects.filter(session_token__isnull=True).only("pk"):
        rater.session_token = studies.models.new_token()
        rater.save(update_fields=["session_token"])


class Migration(migrations.Migration):
    dependencies = [("studies", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="rater",
            name="session_token",
            field=models.CharField(editable=False, max_length=24, null=True),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="rater",
            name="session_token",
            field=models.CharField(
                default=studies.models.new_token, editable=False, max_length=24, unique=True
            ),
        ),
    ]
