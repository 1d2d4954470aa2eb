"""`make test`: find the servers this machine has, then run the whole suite.

PostgreSQL and Redis are used when they answer (CI starts them); otherwise the suite
falls back to SQLite and the file broker and says which tests it could not run. With
VERDICT_REQUIRE_SERVERS=1 (set by .ci/run) a missing server fails those tests instead.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/verdict"
# Database 15, flushed by the tests: never the one a local demo or app uses.
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
# Markers of the tests that need a server or a browser (tests/conftest.py).
SERVER_MARKERS = ("postgres", "redis", "browser")


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _postgres_usable(url: str) -> str | None:
    """None if usable, else why not."""
    if not _answers(url, 5432):
        return "nothing answers at " + url
    import psycopg

    parts = urlsplit(url)
    try:
        # Connect to the maintenance database: the test database is created by the tests.
        psycopg.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"cannot log in: {exc}".strip()
    return None


def main() -> int:
    env = dict(os.environ)
    env.setdefault("VERDICT_VAR_DIR", str(ROOT / "var" / "test"))
    # Live-server request threads must not keep connections open past the test database.
    env.setdefault("CONN_MAX_AGE", "0")
    embedded = env.get("VERDICT_TEST_EMBEDDED") == "1"
    notes = []
    postgres = env.get("TEST_DATABASE_URL") or env.get("DATABASE_URL") or DEFAULT_POSTGRES
    redis = env.get("TEST_REDIS_URL") or DEFAULT_REDIS
    select: list[str] = []
    if embedded:
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        # This pass checks the embedded mode; the server tests run in the main pass, so
        # they are left out here rather than skipped (and the worker test runs on files).
        env["VERDICT_REQUIRE_SERVERS"] = "0"
        select = ["-m", " and ".join(f"not {marker}" for marker in SERVER_MARKERS)]
        notes.append("embedded run requested: SQLite and the file broker, server tests left out")
    else:
        why = (
            _postgres_usable(postgres) if postgres.startswith("postgres") else "not a postgres URL"
        )
        if why is None:
            env["DATABASE_URL"] = postgres
            notes.append(f"PostgreSQL: {postgres}")
        else:
            env.pop("DATABASE_URL", None)
            notes.append(f"PostgreSQL: not used ({why}); falling back to SQLite")
        if _answers(redis, 6379):
            env["CELERY_BROKER_URL"] = redis
            env["VERDICT_TEST_REDIS_URL"] = redis
            notes.append(f"Redis: {redis}")
        else:
            env.pop("CELERY_BROKER_URL", None)
            notes.append(f"Redis: not used (nothing answers at {redis}); file broker instead")
    chromium = shutil.which("chromium")
    notes.append(f"Chromium: {chromium or 'not found (apt-get install chromium)'}")
    print("make test:\n  " + "\n  ".join(notes), flush=True)
    args = [sys.executable, "-m", "pytest", *select, *sys.argv[1:]]
    return subprocess.call(args, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
