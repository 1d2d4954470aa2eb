"""A documented backup and restore: a study with votes is dumped (pg_dump and the media
store) and restored into an empty database and media folder by a separate process,
with every table's count and every file's hash equal."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command

from studies.backups import media_hashes
from studies.models import Assignment, Rater, Vote
from tests.factories import answer_pairs, make_judging_rater, make_live_study

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _url(name: str) -> str:
    db: dict[str, Any] = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db.get('PORT') or 5432}/{name}"


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(_url("postgres"), autocommit=True)


def _restore(folder: Path, database: str, media: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_url(database),
        VERDICT_MEDIA_ROOT=str(media),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return subprocess.run(
        [sys.executable, "manage.py", "restore", str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_study_with_votes_restores_whole_into_an_empty_database(tmp_path: Path) -> None:
    study = make_live_study(systems=3, prompts=2)
    for _ in range(3):
        answer_pairs(make_judging_rater(study))
    saved = {
        "studies_vote": Vote.objects.count(),
        "studies_assignment": Assignment.objects.count(),
        "studies_rater": Rater.objects.count(),
    }
    assert saved["studies_vote"] > 0
    saved_media = media_hashes(Path(settings.MEDIA_ROOT))
    assert saved_media

    call_command("backup", str(tmp_path / "backups"))
    (folder,) = (tmp_path / "backups").iterdir()
    assert {p.name for p in folder.iterdir()} == {"database.dump", "media.tar", "MANIFEST.json"}

    database = f"verdict_restore_{uuid.uuid4().hex[:8]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        media = tmp_path / "restored-media"
        done = _restore(folder, database, media)
        assert done.returncode == 0, done.stderr
        assert "every count and hash matches" in done.stdout
        # Counted again here, independently of the command's own check.
        with psycopg.connect(_url(database)) as restored:
            for table, count in saved.items():
                found = restored.execute(f"SELECT count(*) FROM {table}").fetchone()
                assert found is not None and found[0] == count, table
            current = restored.execute(
                "SELECT count(*) FROM studies_vote WHERE is_current"
            ).fetchone()
            assert current is not None
            assert current[0] == Vote.objects.filter(is_current=True).count()
        assert media_hashes(media) == saved_media
        # A second restore over it is refused: nothing is overwritten.
        again = _restore(folder, database, tmp_path / "other-media")
        assert again.returncode != 0 and "not empty" in again.stderr
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
