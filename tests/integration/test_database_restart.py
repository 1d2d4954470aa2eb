"""PostgreSQL restarted while a rater votes: while it is down, requests get a 503 with a
retry hint (no 500 page, no traceback); once it is back, the browser's retry with the
same client id is stored, and every acknowledged vote is stored exactly once.

The test starts its own PostgreSQL cluster on another port (initdb, pg_ctl), so the
machine's shared server is never touched, and serves Verdict with gunicorn from
config/gunicorn.conf.py against it."""

import glob
import http.cookiejar
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        pytest.fail(f"{name} not found: install PostgreSQL's server package")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster (run as the postgres user when we are root)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="verdict-pg-"))
        self.port = _free_port()
        self.data = self.home / "data"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_postgres, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.home / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        subprocess.run([*self.as_postgres, _bin("pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.remove()


SEED = (
    "from tests.factories import make_live_study; "
    "make_live_study(slug='fault', systems=4, prompts=4, practice_comparisons=0, "
    "attention_check_rate=0, comparisons_per_session=40)"
)


class Rater:
    """A browser: cookies, CSRF, JSON."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def csrf(self) -> str:
        return next(str(c.value) for c in self.jar if c.name == "csrftoken")

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, form: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        data, headers = None, {}
        if body is not None:
            if form:
                data = urllib.parse.urlencode({**body, "csrfmiddlewaretoken": self.csrf()}).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", "X-CSRFToken": self.csrf()}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


def _vote(
    rater: Rater, session: dict[str, Any], client_id: str
) -> tuple[int, dict[str, str], bytes]:
    pair = session["comparisons"][0]["id"]
    body = {"assignment": pair, "answer": "left", "response_ms": 1800, "client_id": client_id}
    return rater.call("POST", "/api/r/fault/votes", body)


def test_votes_survive_a_database_restart_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE verdict_fault")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=cluster.url("verdict_fault"),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        VERDICT_VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="filesystem://localhost//",
        VERDICT_RATE_LIMITS="0",
        LOG_LEVEL="WARNING",
    )
    for command in (["migrate", "--noinput", "-v0"], ["shell", "-c", SEED]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
    port = _free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        rater = Rater(base)
        pid = uuid.uuid4().hex[:24]
        rater.call("GET", f"/r/fault/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x")
        rater.call("POST", "/r/fault/consent", {"decision": "agree"}, form=True)
        rater.call("POST", "/r/fault/instructions", {}, form=True)
        status, _, raw = rater.call("POST", "/api/r/fault/session", {})
        assert status == 200, raw[:300]
        session = json.loads(raw)
        acknowledged: list[str] = []

        def vote_ok(client_id: str) -> None:
            nonlocal session
            status, _, raw = _vote(rater, session, client_id)
            assert status in (200, 201), raw[:300]
            acknowledged.append(client_id)
            session = json.loads(raw)["session"]

        for _ in range(5):
            vote_ok(str(uuid.uuid4()))

        cluster.stop()
        pending = str(uuid.uuid4())
        status, headers, raw = _vote(rater, session, pending)
        assert status == 503, raw[:300]
        assert headers.get("Retry-After") == "5"
        assert "Try again in a moment" in json.loads(raw)["detail"]
        status, headers, page = rater.call("GET", "/r/fault/compare")
        assert status == 503 and b"Traceback" not in page and headers.get("Retry-After")
        status, _, health = rater.call("GET", "/healthz")
        assert status == 503 and json.loads(health)["database"].startswith("unreachable")

        cluster.start()
        for _ in range(20):  # the browser retries the same answer with the same id
            status, _, raw = _vote(rater, session, pending)
            if status != 503:
                break
            time.sleep(0.5)
        assert status in (200, 201), raw[:300]
        acknowledged.append(pending)
        session = json.loads(raw)["session"]
        # A second delivery of the same answer (the reply was lost) is acknowledged again,
        # not stored again.
        status, _, _ = _vote(rater, session, pending)
        for _ in range(3):
            vote_ok(str(uuid.uuid4()))
    finally:
        server.terminate()
        server.wait(timeout=30)

    with psycopg.connect(cluster.url("verdict_fault")) as db:
        stored = [str(row[0]) for row in db.execute("SELECT client_id FROM studies_vote")]
    assert sorted(stored) == sorted(acknowledged)  # each once: the ids are unique
    assert len(stored) == 9
