"""Backup and restore of the database and the media store, checked against a manifest.

A backup is a folder: ``database.dump`` (PostgreSQL's custom format, from ``pg_dump``) or
``database.sqlite3`` (SQLite's online backup), ``media.tar`` (every stored file) and
``MANIFEST.json`` (the row count of every table and the sha256 of every file). A restore
goes into an empty database and an empty media folder, then counts and hashes again and
names any difference: a backup that cannot be restored whole says so.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

MANIFEST = "MANIFEST.json"
MEDIA_TAR = "media.tar"


class BackupError(RuntimeError):
    """A backup or restore that cannot go ahead, or did not restore what was saved."""


def table_counts() -> dict[str, int]:
    """Rows per table of every installed model (the manifest's check)."""
    return {
        model._meta.db_table: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def media_hashes(root: Path) -> dict[str, str]:
    found = {}
    if root.exists():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                found[path.relative_to(root).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def _pg_env_and_args() -> tuple[dict[str, str], list[str]]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = ["--host", str(db.get("HOST") or "127.0.0.1"), "--port", str(db.get("PORT") or 5432)]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    return env, args


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


@dataclass(frozen=True)
class Backup:
    folder: Path
    manifest: dict[str, Any]


def backup(*, destination: Path) -> Backup:
    """Write a backup folder under ``destination``; returns it with its manifest."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    folder = destination / f"verdict-backup-{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        env, args = _pg_env_and_args()
        dump = folder / "database.dump"
        _run(["pg_dump", "--format=custom", "--no-owner", *args, "--file", str(dump),
              str(db["NAME"])], env)  # fmt: skip
        engine = "postgresql"
    elif connection.vendor == "sqlite":
        source = sqlite3.connect(str(db["NAME"]))
        target = sqlite3.connect(str(folder / "database.sqlite3"))
        with target:
            source.backup(target)
        source.close()
        target.close()
        engine = "sqlite"
    else:
        raise BackupError(f"No backup for the {connection.vendor} database.")
    media_root = Path(settings.MEDIA_ROOT)
    with tarfile.open(folder / MEDIA_TAR, "w") as archive:
        if media_root.exists():
            archive.add(media_root, arcname=".")
    manifest = {
        "engine": engine,
        "created_at": timezone.now().isoformat(),
        "tables": table_counts(),
        "media": media_hashes(media_root),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return Backup(folder, manifest)


def _database_is_empty() -> bool:
    return "django_migrations" not in connection.introspection.table_names()


def restore(*, source: Path) -> dict[str, Any]:
    """Restore a backup folder into the configured database and media folder (both
    empty), then check every count and hash; returns the manifest."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} has no readable {MANIFEST}: {exc}") from None
    if manifest.get("engine") != connection.vendor:
        raise BackupError(
            f"The backup is of a {manifest.get('engine')} database; this one is "
            f"{connection.vendor}."
        )
    if not _database_is_empty():
        raise BackupError("The database is not empty: restore into a new, empty one.")
    media_root = Path(settings.MEDIA_ROOT)
    if media_root.exists() and any(media_root.iterdir()):
        raise BackupError(f"The media folder {media_root} is not empty.")
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        env, args = _pg_env_and_args()
        connection.close()
        _run(["pg_restore", "--no-owner", "--exit-on-error", *args, "--dbname",
              str(db["NAME"]), str(source / "database.dump")], env)  # fmt: skip
    else:
        connection.close()
        shutil.copyfile(source / "database.sqlite3", str(db["NAME"]))
    media_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source / MEDIA_TAR) as archive:
        archive.extractall(media_root, filter="data")  # refuses links and paths outside
    problems = [
        f"table {table}: {count} rows saved, {restored} restored"
        for table, count in manifest["tables"].items()
        if (restored := table_counts().get(table)) != count
    ]
    hashes = media_hashes(media_root)
    problems += [
        f"media {name}: {'missing' if name not in hashes else 'different bytes'}"
        for name, digest in manifest["media"].items()
        if hashes.get(name) != digest
    ]
    if problems:
        raise BackupError("Restored with differences: " + "; ".join(problems[:20]))
    return manifest
