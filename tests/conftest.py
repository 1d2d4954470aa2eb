"""Shared fixtures and the server markers.

Tests marked ``postgres``, ``redis`` or ``browser`` need a real server or browser. Where it
is missing they are skipped with the reason, and listed at the end of the run; with
VERDICT_REQUIRE_SERVERS=1 (CI) they fail instead, so CI can never pass without them.
"""

import ctypes.util
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

SERVER_MARKERS = ("postgres", "redis", "browser", "pdf")
_not_run: Counter[str] = Counter()


def _missing(marker: str) -> str | None:
    """Why the server behind a marker is unavailable, or None."""
    if marker == "postgres":
        if connection.vendor != "postgresql":
            return "PostgreSQL not in use (set DATABASE_URL=postgres://... or start the server)"
    elif marker == "redis":
        if not os.environ.get("VERDICT_TEST_REDIS_URL"):
            return "Redis not in use (start redis-server on 127.0.0.1:6379)"
    elif marker == "pdf":
        if ctypes.util.find_library("pangoft2-1.0") is None:
            return "Pango not installed (apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
    elif marker == "browser":
        if not shutil.which("chromium"):
            return "Debian chromium not installed (apt-get install chromium)"
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "playwright not installed"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in SERVER_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        why = _missing(marker)
        if why is None:
            continue
        if os.environ.get("VERDICT_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{marker} is required here (VERDICT_REQUIRE_SERVERS=1): {why}")
        _not_run[marker] += 1
        pytest.skip(f"{marker}: {why}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _not_run:
        counts = ", ".join(f"{n} needing {m}" for m, n in sorted(_not_run.items()))
        terminalreporter.write_line(
            f"NOT RUN on this machine: {counts}. Start the servers (see README) to run them.",
            yellow=True,
            bold=True,
        )


@pytest.fixture(autouse=True)
def _fresh_content_cache() -> None:
    """Rolled-back tests reuse primary keys: no cached content crosses tests; nor do the
    rate limits' counts (every test client calls from 127.0.0.1)."""
    from django.core.cache import cache

    from studies import content, debounce

    content.clear()
    cache.clear()
    debounce.clear()


@pytest.fixture(autouse=True)
def _media_root(settings: object, tmp_path: Path) -> None:
    """Each test stores media in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"  # type: ignore[attr-defined]
    settings.IMPORT_ROOT = tmp_path / "imports"  # type: ignore[attr-defined]
