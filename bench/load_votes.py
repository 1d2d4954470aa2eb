"""Load benchmark of the rater vote path: Verdict's real rater flow against a bare Django
vote, driven by the same load generator in the same run.

Everything runs on loopback:
- Verdict: a fresh PostgreSQL database (``verdict_bench``), migrated, with one live study
  large enough that no rater runs out of pairs (no practice, no attention checks, so every
  vote is a real comparison). Served by gunicorn with config/gunicorn.conf.py (sync
  workers, 2 × cores), DEBUG off, persistent database connections.
- The baseline: bench/vote_baseline, the "plain Django view + ORM vote" of
  reference/VOTE-PATH.md §5 (no middleware at all: no sessions, no CSRF), under the same
  gunicorn config against its own database (``verdict_bench_baseline``), its assignment
  table refilled before each run.
- Simulated raters, asyncio + aiohttp in this process. A Verdict rater arrives by a
  Prolific link, consents, reads the instructions, asks for its pairs, then votes on the
  first open pair again and again (each answer carries the next pairs). A baseline rater
  votes on the assignment its last vote was served. Only the votes are timed.

Both targets' tables are analysed at the end of each warm-up (``analyze``), as autovacuum
would in a study running for more than a minute, and every run starts after a CHECKPOINT
(``checkpoint``).

Modes: stress (no think time; a warm-up, then ``--seconds`` measured) at each ``--raters``
count, ``--rounds`` times (baseline then Verdict in odd rounds, Verdict then baseline in
even ones; the ratio target is judged on the median round, as the host's speed drifts
between runs), and realistic (2-5 s of thought between votes) at the largest count. At
the end of a run the raters stop sending and wait for the votes in flight; then the
database is checked: every acknowledged vote stored and no other (but for requests whose
outcome is unknown: no response, or a 5xx), no duplicate, and for Verdict the shown sides
counterbalanced within ±1 per comparison. A failed check exits with status 1.

Run: .venv/bin/python bench/load_votes.py [--raters 50,200] [--seconds 12] [--rounds 1]
         [--think stress,realistic] [--only verdict|baseline] [--keep-db] [--json PATH]
PostgreSQL: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432); the two databases
above are dropped and created again on every run.
"""

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    import aiohttp

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
VERDICT_DB = "verdict_bench"
BASELINE_DB = "verdict_bench_baseline"
SLUG = "load-bench"
# 8 systems × 64 prompts × 1 criterion = 1,792 comparisons. A rater never gets one twice,
# so this is how many votes one rater can give; the default run asks a few hundred at most.
SYSTEMS = 8
PROMPTS = 64
# The baseline's pool of unserved assignments (VOTE-PATH.md used 300,000).
BASELINE_ROWS = 200_000
THINK_S = (2.0, 5.0)
ANSWERS = ("left", "right")
# Raters joining at once: joining renders HTML pages, which is not what is measured.
JOIN_CONCURRENCY = 20
# How long the votes in flight at the end of a run may take before they count as unknown.
DRAIN_S = 60.0
# The statistics are refreshed this long before the measured window opens.
SETTLE_LEAD_S = 0.5
REQUEST_TIMEOUT_S = 30.0
TARGET_RATIO = 0.75
TARGET_P99_MS = 75.0


class SetupError(Exception):
    """The benchmark could not set up a database, a server or a rater."""


@dataclass(frozen=True)
class Mode:
    name: str
    think: tuple[float, float] | None
    warmup_s: float
    seconds: float

    @property
    def label(self) -> str:
        return "none" if self.think is None else f"{self.think[0]:g}-{self.think[1]:g} s"


@dataclass(frozen=True)
class RunSpec:
    target: str  # "verdict" or "baseline"
    raters: int
    mode: Mode
    round: int = 1  # stress runs repeat, --rounds times, in turn A B B A (``plan``)

    @property
    def name(self) -> str:
        return self.target if self.round == 1 else f"{self.target} #{self.round}"


# Statistics


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of sorted values; nan when there are none."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Sample(NamedTuple):
    end: float  # perf_counter() when the response was read
    latency: float
    ok: bool


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    process: float
    idle: int  # /proc/stat jiffies, -1 where there is no /proc
    total: int
    server: float = math.nan  # CPU seconds so far of the server's processes
    postgres: float = math.nan  # ... and of PostgreSQL's


def group_cpu_seconds(server_group: int | None) -> tuple[float, float]:
    """CPU seconds used so far by the gunicorn server (its process group) and by
    PostgreSQL (every process named postgres; the connections persist, so none exits in
    a run), from /proc; NaN where there is no /proc."""
    if not Path("/proc/self/stat").exists():
        return math.nan, math.nan
    tick = os.sysconf("SC_CLK_TCK")
    server = postgres = 0.0
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = path.read_text()
        except OSError:  # exited meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        rest = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on
        used = (int(rest[11]) + int(rest[12])) / tick  # utime + stime
        if name == "postgres":
            postgres += used
        elif server_group is not None and int(rest[2]) == server_group:
            server += used
    return server, postgres


def cpu_snapshot(server_group: int | None = None) -> CpuSnapshot:
    idle = total = -1
    with contextlib.suppress(OSError):
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        jiffies = [int(value) for value in first[1:9]]
        idle, total = jiffies[3] + jiffies[4], sum(jiffies)  # idle + iowait
    server, postgres = group_cpu_seconds(server_group)
    return CpuSnapshot(time.perf_counter(), time.process_time(), idle, total, server, postgres)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class LoadLog:
    """What one run's raters saw: every vote, the acknowledged client ids, the counts."""

    samples: list[Sample] = field(default_factory=list)
    responses: Counter[str] = field(default_factory=Counter)  # "201", "500", "ClientOSError"
    acked: list[str] = field(default_factory=list)
    unknown: int = 0  # votes that may or may not be stored
    window: tuple[float, float] = (0.0, 0.0)
    cpu: tuple[CpuSnapshot, CpuSnapshot] | None = None


@dataclass(frozen=True)
class LoadSummary:
    votes_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    measured: int
    sent: int
    errors: int
    responses: dict[str, int]
    generator_cpu: float  # share of all cores, over the measured window
    idle: float  # share of the machine left idle, over the measured window
    out_of_pairs: int  # raters that stopped because nothing was left to serve them
    # CPU per vote acknowledged in the window: the web server's and PostgreSQL's.
    server_ms: float = math.nan
    postgres_ms: float = math.nan


def summarise(log: LoadLog, *, out_of_pairs: int) -> LoadSummary:
    """Throughput and latency over the votes acknowledged within the measured window;
    errors over the whole run."""
    start, stop = log.window
    latencies = sorted(s.latency for s in log.samples if s.ok and start <= s.end < stop)
    generator = idle = server_ms = postgres_ms = math.nan
    if log.cpu is not None:
        before, after = log.cpu
        wall = after.wall - before.wall
        generator = (after.process - before.process) / (wall * _cores()) if wall > 0 else math.nan
        if after.total > before.total >= 0:
            idle = (after.idle - before.idle) / (after.total - before.total)
        if latencies:
            server_ms = (after.server - before.server) * 1000 / len(latencies)
            postgres_ms = (after.postgres - before.postgres) * 1000 / len(latencies)
    errors = sum(n for key, n in log.responses.items() if not key.startswith("2"))
    return LoadSummary(
        votes_per_s=len(latencies) / (stop - start) if stop > start else math.nan,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        measured=len(latencies),
        sent=len(log.samples),
        errors=errors,
        responses=dict(sorted(log.responses.items())),
        generator_cpu=generator,
        idle=idle,
        out_of_pairs=out_of_pairs,
        server_ms=server_ms,
        postgres_ms=postgres_ms,
    )


# PostgreSQL


def admin_connection() -> psycopg.Connection[Any]:
    return psycopg.connect(f"{PG_URL}/postgres", autocommit=True, connect_timeout=5)


def db_url(name: str) -> str:
    return f"{PG_URL}/{name}"


def connect(name: str) -> psycopg.Connection[Any]:
    return psycopg.connect(db_url(name), autocommit=True)


def recreate_database(name: str) -> None:
    with admin_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    with admin_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def scalar(conn: psycopg.Connection[Any], query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


# Servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(*, name: str, app: str, env: dict[str, str], workdir: Path, logs: Path) -> Server:
    """gunicorn with the project's config, on a free loopback port, in its own process group
    (a Ctrl-C in the terminal reaches only this script, which then stops it)."""
    port = free_port()
    log_path = logs / f"{name}-gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--chdir", str(workdir)]
    server_env = {
        **os.environ,
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_LOG_LEVEL": "warning",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, app],
            cwd=workdir,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, f"http://127.0.0.1:{port}", process, log_path)


def wait_ready(server: Server, path: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SetupError(f"{server.name} server exited at start:\n{server.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url + path, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SetupError(f"{server.name} server did not answer {path} in {timeout_s:g} s")


def stop_server(server: Server) -> None:
    """TERM to the gunicorn master (it stops its workers), KILL to its group if it hangs."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # A worker outliving its master would still be in the group the server was started in.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# Verdict: database, study, server


def verdict_env(tmp: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url(VERDICT_DB),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        # Files (media, the file broker's queue) go to a scratch folder, never to var/.
        "VERDICT_VAR_DIR": str(tmp / "var"),
        "VERDICT_MEDIA_ROOT": str(tmp / "media"),
        "VERDICT_IMPORT_ROOT": str(tmp / "imports"),
        "CELERY_BROKER_URL": "filesystem://localhost//",
        # Every simulated rater calls from 127.0.0.1 with no think time: the rate limits
        # (studies.limits) would measure themselves. Off, as for the baseline.
        "VERDICT_RATE_LIMITS": "0",
    }


def migrate_verdict(env: dict[str, str]) -> None:
    run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env)


def run_checked(command: list[str], *, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 60, 200)).save(out, "PNG")
    return out.getvalue()


def seed_verdict(env: dict[str, str]) -> None:
    """Create and launch the study, in this process with the benchmark's settings: every
    system has a tiny image for every prompt; the launch builds the comparisons."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.db import connections

    from studies.lifecycle import launch_study
    from studies.models import Asset, AssetKind, Criterion, Prompt, Study, System, new_public_id

    study = Study.objects.create(
        name="Load benchmark",
        slug=SLUG,
        status="ready",
        # Sessions that never end on their own, and every vote a real comparison.
        comparisons_per_session=30_000,
        votes_per_comparison=30_000,
        attention_check_rate=0,
        practice_comparisons=0,
        ask_questionnaire=False,
    )
    systems = System.objects.bulk_create(
        System(study=study, name=f"model {i:02d}") for i in range(SYSTEMS)
    )
    prompts = Prompt.objects.bulk_create(
        Prompt(study=study, text=f"shapes and colours, scene {i}") for i in range(PROMPTS)
    )
    Criterion.objects.create(study=study, key="quality", question="Which image looks better?")
    data = tiny_png()
    digest = hashlib.sha256(data).hexdigest()
    assets = []
    for system in systems:
        for prompt in prompts:
            public_id = new_public_id()
            name = default_storage.save(f"a/{public_id}.png", ContentFile(data))
            assets.append(
                Asset(
                    system=system,
                    prompt=prompt,
                    seed=0,
                    kind=AssetKind.OUTPUT,
                    public_id=public_id,
                    file=name,
                    media_type="image/png",
                    width=16,
                    height=16,
                    byte_size=len(data),
                    sha256=digest,
                )
            )
    Asset.objects.bulk_create(assets)
    launch_study(study=study)
    connections.close_all()


# Baseline: database, assignments, server


def baseline_env() -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "vote_baseline.settings",
        "DATABASE_URL": db_url(BASELINE_DB),
        "SECRET_KEY": secrets.token_urlsafe(50),
    }


def migrate_baseline(env: dict[str, str]) -> None:
    run_checked(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        cwd=ROOT / "bench",
        env=env,
    )


def refill_baseline(raters: int) -> list[int]:
    """Empty both tables, fill the pool of unserved assignments, and serve each rater its
    first one; returns those ids."""
    with connect(BASELINE_DB) as conn:
        conn.execute("TRUNCATE vote_baseline_vote, vote_baseline_assignment RESTART IDENTITY")
        conn.execute(
            "INSERT INTO vote_baseline_assignment (rater_id, left_id, right_id, served_at) "
            "SELECT g %% 1000, 2 * g, 2 * g + 1, NULL FROM generate_series(1, %s) AS g",
            (BASELINE_ROWS,),
        )
        held = conn.execute(
            "UPDATE vote_baseline_assignment SET served_at = now() WHERE id <= %s RETURNING id",
            (raters,),
        ).fetchall()
        conn.execute("VACUUM ANALYZE vote_baseline_vote")
        conn.execute("VACUUM ANALYZE vote_baseline_assignment")
    return sorted(int(row[0]) for row in held)


def analyze(database: str, tables: Sequence[str]) -> None:
    """Refresh the planner's statistics of these tables, as autovacuum's analyse would in
    a running study (one look a minute: never within a run). Done at the end of each
    warm-up, for both targets: a run starts on tables that grow by thousands of rows in
    seconds, and prepared statements planned on the statistics of the tables as the
    warm-up began (a vote table empty at a first run) keep scanning them whole; the
    first round of a Verdict run then spent 1.5 to 2.5 times the PostgreSQL CPU per vote
    of the next one."""
    with connect(database) as conn:
        for table in tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


VERDICT_TABLES = ("studies_comparison", "studies_assignment", "studies_vote", "studies_rater")
BASELINE_TABLES = ("vote_baseline_vote", "vote_baseline_assignment")


def checkpoint() -> None:
    """Write every dirty page out before a run: the baseline's refill writes 200,000 rows
    and each run dirties pages of its own, and what is still unwritten when a run ends is
    written during the next one, in PostgreSQL's processes, on the same two cores: the run
    after would pay for the run before. The price, the same for both targets: each page a
    run changes is logged whole the first time after it (full-page writes), mostly within
    the warm-up, where the hot pages are first touched. Runs as the benchmark's PostgreSQL
    user (CHECKPOINT needs a superuser or pg_checkpoint)."""
    with admin_connection() as conn:
        conn.execute("CHECKPOINT")


def vacuum_verdict() -> None:
    """Before each Verdict run, as the baseline's tables are before each of its runs:
    the rater path's tables vacuumed and analysed. A run updates every comparison several
    times a second, faster than autovacuum (one look a minute) clears the dead rows, so
    without it each run would start on the last one's leftovers."""
    with connect(VERDICT_DB) as conn:
        for table in VERDICT_TABLES:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


# Raters


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no response (connection error, timeout)
    error: str
    latency: float
    client_id: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def key(self) -> str:
        return str(self.status) if self.status is not None else self.error


class Rater(Protocol):
    @property
    def has_work(self) -> bool: ...

    async def vote(self) -> Outcome: ...


async def timed_post(
    http: "aiohttp.ClientSession", url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int | None, bytes, str, float]:
    """POST JSON and read the whole answer: (status, body, error, seconds)."""
    import aiohttp

    start = time.perf_counter()
    try:
        async with http.post(url, json=body, headers=headers) as response:
            payload = await response.read()
            return response.status, payload, "", time.perf_counter() - start
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, b"", type(exc).__name__, time.perf_counter() - start


class VerdictRater:
    """One browser: its own cookies (the signed session and the CSRF token). The pages of
    the entry keep them in a cookie jar; the API calls send them as headers through the
    run's shared client without a jar (``calls``), since looking cookies up in a jar cost
    the generator more than a vote's parsing, and a browser would pay it on its own
    machine. Verdict sets no cookie on an API call."""

    def __init__(self, http: "aiohttp.ClientSession", calls: "aiohttp.ClientSession", base: str):
        self.http = http
        self.calls = calls
        self.base = base
        self.pairs: list[str] = []
        self.dropped = False
        self.call_headers: dict[str, str] = {}

    @property
    def has_work(self) -> bool:
        return bool(self.pairs)

    def csrf(self) -> str:
        for cookie in self.http.cookie_jar:
            if cookie.key == "csrftoken":
                return cookie.value
        raise SetupError("Verdict set no csrftoken cookie.")

    async def page(self, method: str, path: str, *, expect: str, **kwargs: Any) -> None:
        """Load a page (following redirects) and check where the flow landed."""
        if method == "POST":
            kwargs["data"] = {**kwargs.get("data", {}), "csrfmiddlewaretoken": self.csrf()}
        async with self.http.request(method, self.base + path, **kwargs) as response:
            await response.read()
            if response.status != 200 or not response.url.path.endswith(expect):
                raise SetupError(
                    f"{method} {path}: HTTP {response.status} at {response.url.path}, "
                    f"expected the page {expect}"
                )

    async def join(self) -> None:
        """Arrive by a Prolific link, consent, finish the instructions, take the first
        pairs; nothing of this is timed."""
        ids = {
            "PROLIFIC_PID": secrets.token_hex(12),
            "STUDY_ID": secrets.token_hex(12),
            "SESSION_ID": secrets.token_hex(12),
        }
        await self.page("GET", f"/r/{SLUG}/", params=ids, expect="/consent")
        await self.page(
            "POST", f"/r/{SLUG}/consent", data={"decision": "agree"}, expect="/instructions"
        )
        await self.page("POST", f"/r/{SLUG}/instructions", expect="/compare")
        cookies = "; ".join(f"{cookie.key}={cookie.value}" for cookie in self.http.cookie_jar)
        self.call_headers = {"Cookie": cookies, "X-CSRFToken": self.csrf()}
        await self.resync()

    async def resync(self) -> None:
        """Ask for the open pairs, as the page does on load."""
        url = f"{self.base}/api/r/{SLUG}/session"
        status, payload, error, _ = await timed_post(self.calls, url, {}, self.call_headers)
        if status != 200:
            raise SetupError(f"POST {url}: {status or error} {payload[:300]!r}")
        self.pairs = [pair["id"] for pair in json.loads(payload)["comparisons"]]

    async def vote(self) -> Outcome:
        client_id = str(uuid.uuid4())
        body = {
            "assignment": self.pairs[0],
            "answer": random.choice(ANSWERS),
            "response_ms": random.randint(900, 4000),
            "client_id": client_id,
            "correction": False,
        }
        url = f"{self.base}/api/r/{SLUG}/votes"
        status, payload, error, latency = await timed_post(self.calls, url, body, self.call_headers)
        outcome = Outcome(status, error, latency, client_id)
        if outcome.ok:
            self.pairs = [pair["id"] for pair in json.loads(payload)["session"]["comparisons"]]
        else:
            # Where the pair stands is unknown: start again from the session, as the page would.
            try:
                await self.resync()
            except (SetupError, OSError, TimeoutError):
                self.pairs, self.dropped = [], True
        return outcome


class BaselineRater:
    """Votes on the assignment the baseline served it last; stops if a vote fails."""

    def __init__(self, http: "aiohttp.ClientSession", base: str, held: int) -> None:
        self.http = http
        self.url = base + "/vote"
        self.held: int | None = held
        self.dropped = False

    @property
    def has_work(self) -> bool:
        return self.held is not None

    async def vote(self) -> Outcome:
        client_id = str(uuid.uuid4())
        body = {
            "assignment_id": self.held,
            "choice": random.choice(ANSWERS),
            "client_id": client_id,
        }
        status, payload, error, latency = await timed_post(self.http, self.url, body, {})
        outcome = Outcome(status, error, latency, client_id)
        if outcome.ok:
            served = json.loads(payload)["next"]
            self.held = None if served is None else int(served["id"])
        else:
            self.held, self.dropped = None, True
        return outcome


# Load


@dataclass(frozen=True)
class Clock:
    start: float  # the measured window, perf_counter() times
    stop: float

    def sending(self) -> bool:
        return time.perf_counter() < self.stop


async def drive(
    rater: Rater, clock: Clock, think: tuple[float, float] | None, log: LoadLog
) -> None:
    """One rater's loop: vote, think, vote, until the window closes."""
    if think is not None:
        # Spread the first votes over one think time, as raters arriving at random would.
        await asyncio.sleep(random.uniform(0, think[1]))
    while rater.has_work and clock.sending():
        outcome = await rater.vote()
        log.samples.append(Sample(time.perf_counter(), outcome.latency, outcome.ok))
        log.responses[outcome.key] += 1
        if outcome.ok:
            log.acked.append(outcome.client_id)
        elif outcome.status is None or outcome.status >= 500:
            # A 5xx may come after the vote's commit (the next pairs failed), and a lost
            # connection after the server's: the vote may be stored.
            log.unknown += 1
        if think is not None:
            await asyncio.sleep(random.uniform(*think))


async def sample_cpu(clock: Clock, server_group: int | None) -> tuple[CpuSnapshot, CpuSnapshot]:
    await asyncio.sleep(max(0.0, clock.start - time.perf_counter()))
    before = cpu_snapshot(server_group)
    await asyncio.sleep(max(0.0, clock.stop - time.perf_counter()))
    return before, cpu_snapshot(server_group)


async def at_warm(clock: Clock, settle: Callable[[], None]) -> None:
    """Run ``settle`` (in a thread) a moment before the measured window opens."""
    await asyncio.sleep(max(0.0, clock.start - SETTLE_LEAD_S - time.perf_counter()))
    await asyncio.to_thread(settle)


async def run_load(
    raters: Sequence[Rater],
    mode: Mode,
    server_group: int | None = None,
    settle: Callable[[], None] | None = None,
) -> LoadLog:
    """Drive the raters through warm-up and the measured window, then wait for the votes
    still in flight (no new one is sent once the window closes). ``settle`` runs at the
    end of the warm-up (the target's statistics refreshed)."""
    log = LoadLog()
    begin = time.perf_counter()
    clock = Clock(begin + mode.warmup_s, begin + mode.warmup_s + mode.seconds)
    log.window = (clock.start, clock.stop)
    sampler = asyncio.create_task(sample_cpu(clock, server_group))
    if settle is not None:
        await asyncio.sleep(0)  # the raters start first
        settling = asyncio.create_task(at_warm(clock, settle))
    tasks = [asyncio.create_task(drive(rater, clock, mode.think, log)) for rater in raters]
    _, late = await asyncio.wait(tasks, timeout=clock.stop - begin + DRAIN_S)
    for task in late:
        task.cancel()
    log.unknown += len(late)  # each was waiting on one vote
    await asyncio.gather(*late, return_exceptions=True)
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
    log.cpu = await sampler
    if settle is not None:
        await settling
    return log


# Database checks


@dataclass(frozen=True)
class DbCheck:
    acked: int
    stored: int
    unknown: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_acknowledged(
    conn: psycopg.Connection[Any], table: str, log: LoadLog, stored: int
) -> list[str]:
    """Every acknowledged vote is stored, and every other stored vote of the run is one
    whose outcome the rater could not know."""
    problems = []
    found = scalar(
        conn, f"SELECT count(*) FROM {table} WHERE client_id = ANY(%s::uuid[])", log.acked
    )
    if found != len(log.acked):
        problems.append(f"{len(log.acked) - found} acknowledged votes are not stored")
    extra = stored - len(log.acked)
    if not 0 <= extra <= log.unknown:
        problems.append(
            f"{stored} votes stored for {len(log.acked)} acknowledged and {log.unknown} of "
            "unknown outcome"
        )
    duplicated = scalar(
        conn,
        f"SELECT count(*) FROM (SELECT client_id FROM {table} GROUP BY client_id "
        "HAVING count(*) > 1) AS d",
    )
    if duplicated:
        problems.append(f"{duplicated} client ids stored more than once")
    return problems


# Per comparison, how often each system was on the left in pairs that count (open or
# answered), from the assignments themselves.
SIDES = """
WITH sides AS (
    SELECT a.comparison_id AS id,
           count(*) FILTER (WHERE l.system_id = c.system_a_id) AS a_left,
           count(*) FILTER (WHERE l.system_id <> c.system_a_id) AS b_left
    FROM studies_assignment a
    JOIN studies_comparison c ON c.id = a.comparison_id
    JOIN studies_asset l ON l.id = a.left_asset_id
    WHERE a.status IN ('served', 'answered')
    GROUP BY a.comparison_id
)
SELECT count(*) FILTER (WHERE abs(a_left - b_left) > 1),
       coalesce(max(abs(a_left - b_left)), 0),
       (SELECT count(*) FROM studies_comparison c LEFT JOIN sides s ON s.id = c.id
        WHERE c.shown_a_left <> coalesce(s.a_left, 0) OR c.shown_b_left <> coalesce(s.b_left, 0))
FROM sides
"""


def check_verdict(log: LoadLog, *, before: int) -> DbCheck:
    with connect(VERDICT_DB) as conn:
        stored = scalar(conn, "SELECT count(*) FROM studies_vote") - before
        problems = check_acknowledged(conn, "studies_vote", log, stored)
        twice = scalar(
            conn,
            "SELECT count(*) FROM (SELECT assignment_id FROM studies_vote WHERE is_current "
            "GROUP BY assignment_id HAVING count(*) > 1) AS d",
        )
        if twice:
            problems.append(f"{twice} assignments have more than one current vote")
        unanswered = scalar(
            conn,
            "SELECT count(*) FROM studies_vote v JOIN studies_assignment a "
            "ON a.id = v.assignment_id WHERE v.is_current AND a.status <> 'answered'",
        )
        if unanswered:
            problems.append(f"{unanswered} current votes on assignments not marked answered")
        row = conn.execute(SIDES).fetchone()
        assert row is not None
        unbalanced, worst, miscounted = (int(value) for value in row)
        if unbalanced:
            problems.append(
                f"{unbalanced} comparisons show one side more than once more than the other "
                f"(worst by {worst})"
            )
        if miscounted:
            problems.append(
                f"{miscounted} comparisons' shown_a_left/shown_b_left differ from their pairs"
            )
    return DbCheck(len(log.acked), stored, log.unknown, problems)


def check_baseline(log: LoadLog, *, held: int) -> DbCheck:
    with connect(BASELINE_DB) as conn:
        stored = scalar(conn, "SELECT count(*) FROM vote_baseline_vote")
        problems = check_acknowledged(conn, "vote_baseline_vote", log, stored)
        served = scalar(
            conn, "SELECT count(*) FROM vote_baseline_assignment WHERE served_at IS NOT NULL"
        )
        # Each rater was handed one assignment, and each stored vote served the next.
        if served != held + stored:
            problems.append(f"{served} assignments served for {held} handed out + {stored} votes")
    return DbCheck(len(log.acked), stored, log.unknown, problems)


# The runs


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    load: LoadSummary
    check: DbCheck


def session(connector: "aiohttp.TCPConnector", *, jar: bool = True) -> "aiohttp.ClientSession":
    import aiohttp

    return aiohttp.ClientSession(
        connector=connector,
        connector_owner=False,
        # Verdict's cookies are set for 127.0.0.1; aiohttp keeps none for an IP by default.
        cookie_jar=aiohttp.CookieJar(unsafe=True) if jar else aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def join_raters(raters: list[VerdictRater]) -> None:
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def join(rater: VerdictRater) -> None:
        async with gate:
            await rater.join()

    await asyncio.gather(*(join(rater) for rater in raters))


async def run_all(specs: Sequence[RunSpec], servers: dict[str, "Server"]) -> list[RunResult]:
    import aiohttp

    # Sync gunicorn workers close every connection, so nothing is pooled; no cap either.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    # Every timed call of both targets goes through this one client, without a cookie jar.
    calls = session(connector, jar=False)
    verdict_raters: list[VerdictRater] = []
    results = []
    try:
        for spec in specs:
            if spec.target == "verdict":
                # Raters carry on across runs: the same people, still judging.
                new = [
                    VerdictRater(session(connector), calls, servers["verdict"].url)
                    for _ in range(spec.raters - len(verdict_raters))
                ]
                verdict_raters.extend(new)
                if new:
                    step(f"Verdict: {len(new)} more raters join (consent, instructions, pairs)")
                    await join_raters(new)
                raters = verdict_raters[: spec.raters]
                vacuum_verdict()
                checkpoint()
                with connect(VERDICT_DB) as conn:
                    before = scalar(conn, "SELECT count(*) FROM studies_vote")
                log = await run_load(
                    raters,
                    spec.mode,
                    servers["verdict"].process.pid,
                    settle=partial(analyze, VERDICT_DB, VERDICT_TABLES),
                )
                check = check_verdict(log, before=before)
                out = sum(1 for r in raters if not r.pairs and not r.dropped)
            else:
                held = refill_baseline(spec.raters)
                checkpoint()
                baseline = [BaselineRater(calls, servers["baseline"].url, h) for h in held]
                log = await run_load(
                    baseline,
                    spec.mode,
                    servers["baseline"].process.pid,
                    settle=partial(analyze, BASELINE_DB, BASELINE_TABLES),
                )
                check = check_baseline(log, held=len(held))
                out = sum(1 for r in baseline if r.held is None and not r.dropped)
            result = RunResult(spec, summarise(log, out_of_pairs=out), check)
            results.append(result)
            print(progress_line(result), file=sys.stderr, flush=True)
    finally:
        for rater in verdict_raters:
            await rater.http.close()
        await calls.close()
        await connector.close()
    return results


def progress_line(result: RunResult) -> str:
    load, spec = result.load, result.spec
    return (
        f"  {spec.target} {spec.raters} raters, think {spec.mode.label}: "
        f"{load.votes_per_s:,.0f} votes/s, p99 {load.p99_ms:.0f} ms, {load.errors} errors, "
        f"DB {'ok' if result.check.ok else 'FAILED'}"
    )


# Output


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def _share(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0%}"


def _errors(load: LoadSummary) -> str:
    if not load.errors:
        return "0"
    bad = ", ".join(f"{k}: {n}" for k, n in load.responses.items() if not k.startswith("2"))
    return f"{load.errors} ({bad})"


def baseline_rate(results: Sequence[RunResult], spec: RunSpec) -> float | None:
    for other in results:
        if (
            other.spec.target == "baseline"
            and other.spec.raters == spec.raters
            and other.spec.mode == spec.mode
            and other.spec.round == spec.round
        ):
            return other.load.votes_per_s
    return None


def ratio(results: Sequence[RunResult], result: RunResult) -> float | None:
    base = baseline_rate(results, result.spec)
    if result.spec.target != "verdict" or not base:
        return None
    return result.load.votes_per_s / base


def load_table(results: Sequence[RunResult]) -> list[str]:
    lines = [
        "| target | raters | think time | votes/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU ms/vote | PostgreSQL CPU ms/vote | generator CPU | CPU idle "
        "| × baseline |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        spec, load = result.spec, result.load
        share = ratio(results, result)
        lines.append(
            f"| {spec.name} | {spec.raters} | {spec.mode.label} | {load.votes_per_s:,.0f} "
            f"| {_ms(load.p50_ms)} | {_ms(load.p95_ms)} | {_ms(load.p99_ms)} | {_errors(load)} "
            f"| {_ms(load.server_ms)} | {_ms(load.postgres_ms)} "
            f"| {_share(load.generator_cpu)} | {_share(load.idle)} "
            f"| {'' if share is None else f'{share:.2f}×'} |"
        )
    return lines


def check_table(results: Sequence[RunResult]) -> list[str]:
    lines = [
        "| target | raters | think time | acknowledged | stored | unknown outcome "
        "| out of pairs | database checks |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        spec, check = result.spec, result.check
        verdict = "ok" if check.ok else "FAILED: " + "; ".join(check.problems)
        lines.append(
            f"| {spec.name} | {spec.raters} | {spec.mode.label} | {check.acked:,} "
            f"| {check.stored:,} | {check.unknown} | {result.load.out_of_pairs} | {verdict} |"
        )
    return lines


def target_lines(results: Sequence[RunResult]) -> list[str]:
    """The targets, judged on the median ratio of a setting's rounds: the host's speed
    drifts by a quarter and more within minutes, and each round pairs a baseline run with
    the Verdict run right after it."""
    lines = []
    shares: dict[int, list[float]] = {}
    for result in results:
        share = ratio(results, result)
        if result.spec.mode.think is None and share is not None:
            shares.setdefault(result.spec.raters, []).append(share)
    for raters, found in shares.items():
        middle = statistics.median(found)
        met = "met" if middle >= TARGET_RATIO else "missed"
        rounds = (
            f" (median of {len(found)} rounds: {', '.join(f'{x:.2f}' for x in found)})"
            if len(found) > 1
            else ""
        )
        lines.append(
            f"- Verdict ≥ {TARGET_RATIO}× baseline votes/s under stress, {raters} raters: "
            f"{middle:.2f}×{rounds} ({met})"
        )
    for result in results:
        spec = result.spec
        if spec.target != "verdict":
            continue
        if spec.mode.think is not None:
            p99 = result.load.p99_ms
            met = "met" if p99 < TARGET_P99_MS else "missed"
            lines.append(
                f"- Verdict p99 < {TARGET_P99_MS:.0f} ms at {spec.raters} raters with "
                f"{spec.mode.label} think time: {_ms(p99)} ms ({met})"
            )
    return lines


def report(results: Sequence[RunResult], modes: Sequence[Mode]) -> str:
    workers = os.environ.get("WEB_CONCURRENCY") or str(2 * _cores())
    notes = [
        f"Both servers: gunicorn, {workers} sync workers (config/gunicorn.conf.py), on "
        f"{_cores()} cores shared with PostgreSQL and the load generator (asyncio + aiohttp, "
        "one process; its CPU is shown as a share of all cores).",
        "Verdict: DEBUG off, persistent connections, its full middleware stack and the real "
        "rater flow (signed session cookie, CSRF; DRF's view, which a well-formed vote "
        "goes around). Baseline: the plain Django view + ORM "
        "vote of reference/VOTE-PATH.md §5 (bench/vote_baseline), MIDDLEWARE=[] (no "
        "sessions, no CSRF).",
    ]
    for mode in modes:
        notes.append(
            f"{mode.name.capitalize()}: think time {mode.label}, {mode.warmup_s:g} s warm-up, "
            f"{mode.seconds:g} s measured."
        )
    notes.append(
        "votes/s and latencies count the votes acknowledged (2xx) within the measured "
        "window; errors (non-2xx responses and requests without one) count the whole run."
    )
    notes.append(
        "Server and PostgreSQL CPU ms/vote: the CPU time of the gunicorn process group and "
        "of every postgres process over the measured window, per vote acknowledged in it "
        "(on a shared machine other PostgreSQL work counts too)."
    )
    parts = [
        "\n".join(load_table(results)),
        "\n".join(check_table(results)),
        "\n".join(f"- {note}" for note in notes),
    ]
    targets = target_lines(results)
    if targets:
        parts.append("Targets:\n" + "\n".join(targets))
    return "\n\n".join(parts)


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return value


def to_json(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        row = asdict(result)
        row["check"]["ok"] = result.check.ok
        row["ratio_to_baseline"] = ratio(results, result)
        rows.append(_no_nan(row))
    return rows


# Command line


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("give one or more positive rater counts, e.g. 50,200")
    return counts


def parse_modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(modes) - {"stress", "realistic"}
    if not modes or unknown:
        raise argparse.ArgumentTypeError("choose from stress and realistic, e.g. stress,realistic")
    return modes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--raters", type=parse_counts, default=[50, 200], help="concurrent raters (default 50,200)"
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="stress: measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="stress: warm-up seconds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="stress: how many times to run each count, baseline and Verdict in turn (A B B "
        "A; the targets are judged on the median ratio)",
    )
    parser.add_argument(
        "--realistic-seconds", type=float, default=20.0, help="realistic: measured seconds"
    )
    parser.add_argument(
        "--think",
        type=parse_modes,
        default=["stress", "realistic"],
        help="modes: stress (no think time, each --raters count) and realistic (2-5 s think "
        "time, the largest count); default both",
    )
    parser.add_argument("--only", choices=["verdict", "baseline"], help="one target only")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the results as JSON (- for stdout)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def plan(args: argparse.Namespace) -> tuple[list[Mode], list[RunSpec]]:
    """Baseline and Verdict at each setting, back to back, so a drift of the noisy host
    touches both figures of a ratio alike; under stress the order turns each round
    (baseline first in odd rounds, Verdict first in even ones: A B B A), so that what one
    run leaves the next, and a host speeding up or slowing down, does not always fall on
    the same target."""
    modes = []
    if "stress" in args.think:
        modes.append(Mode("stress", None, args.warmup, args.seconds))
    if "realistic" in args.think:
        # One think time's warm-up: by then the raters' first votes are spread out.
        modes.append(Mode("realistic", THINK_S, THINK_S[1], args.realistic_seconds))
    targets = [args.only] if args.only else ["baseline", "verdict"]
    specs = []
    for mode in modes:
        if mode.think is None:
            specs += [
                RunSpec(target, n, mode, round)
                for round in range(1, args.rounds + 1)
                for n in args.raters
                for target in (targets if round % 2 else targets[::-1])
            ]
        else:
            specs += [RunSpec(target, max(args.raters), mode) for target in targets]
    return modes, specs


@contextlib.contextmanager
def servers(targets: set[str], *, tmp: Path, keep_db: bool) -> Iterator[dict[str, Server]]:
    """Create, migrate and seed the databases, start the servers; stop and drop them all
    afterwards, whatever happened."""
    with contextlib.ExitStack() as stack:
        started = {}
        if "verdict" in targets:
            env = verdict_env(tmp)
            step("Verdict: fresh database, migrate")
            recreate_database(VERDICT_DB)
            if not keep_db:
                stack.callback(drop_database, VERDICT_DB)
            migrate_verdict(env)
            step(f"Verdict: seed and launch a study of {SYSTEMS} systems × {PROMPTS} prompts")
            seed_verdict(env)
            server = start_server(
                name="verdict", app="config.wsgi:application", env=env, workdir=ROOT, logs=tmp
            )
            stack.callback(stop_server, server)
            wait_ready(server, "/healthz")
            started["verdict"] = server
        if "baseline" in targets:
            env = baseline_env()
            step("Baseline: fresh database, migrate")
            recreate_database(BASELINE_DB)
            if not keep_db:
                stack.callback(drop_database, BASELINE_DB)
            migrate_baseline(env)
            server = start_server(
                name="baseline",
                app="vote_baseline.wsgi:application",
                env=env,
                workdir=ROOT / "bench",
                logs=tmp,
            )
            stack.callback(stop_server, server)
            wait_ready(server, "/ping")
            started["baseline"] = server
        yield started


_BEGAN = time.monotonic()


def step(message: str) -> None:
    print(f"== [{time.monotonic() - _BEGAN:4.0f} s] {message}", file=sys.stderr, flush=True)


def show_failing_logs(started: dict[str, Server], results: Sequence[RunResult]) -> None:
    """The end of a server's log (tracebacks of its 5xx) when any of its votes failed; the
    log itself goes with the scratch folder."""
    for name, server in started.items():
        if any(r.load.errors for r in results if r.spec.target == name):
            print(f"== {name} gunicorn log, last lines:\n{server.log_tail(40)}", file=sys.stderr)


def require_postgres() -> None:
    try:
        with admin_connection() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        sys.exit(
            f"PostgreSQL is not reachable at {PG_URL} (set BENCH_PG_URL to another server): "
            f"{exc}".strip()
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    modes, specs = plan(args)
    require_postgres()
    # SIGTERM ends the run like Ctrl-C: through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="verdict-load-") as scratch:
        try:
            with servers(
                {s.target for s in specs}, tmp=Path(scratch), keep_db=args.keep_db
            ) as started:
                step(f"{len(specs)} runs")
                results = asyncio.run(run_all(specs, started))
                show_failing_logs(started, results)
        except SetupError as exc:
            print(f"load_votes: {exc}", file=sys.stderr)
            return 1
    print(report(results, modes))
    print(f"\n(took {time.monotonic() - _BEGAN:.0f} s)")
    if args.json:
        text = json.dumps(to_json(results), indent=2, allow_nan=False)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if all(result.check.ok for result in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The servers were stopped and the databases dropped on the way out.
        sys.exit("load_votes: interrupted")
