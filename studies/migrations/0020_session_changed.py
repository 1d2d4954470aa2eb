"""``verdict_session_changed()``: raised by a vote's statement that finds the rater's row
changed since the vote read it (studies.desk_sql, the vote at once), so that the whole
statement stores nothing and the vote runs again under the rater's lock. PostgreSQL only:
elsewhere a vote always takes the lock first."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION verdict_session_changed() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the rater''s session changed since the vote read it'
        USING ERRCODE = 'serialization_failure';
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS verdict_session_changed()"


def create(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0019_session_read_bound"),
    ]

    operations = [migrations.RunPython(create, drop)]
