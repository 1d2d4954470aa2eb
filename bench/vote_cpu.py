"""CPU per vote, one request at a time: Verdict's vote request against the baseline's.

bench/load_votes.py measures throughput under load, where the ratio to the baseline comes
down to CPU per vote, but one run's ratio wanders by a tenth with the host. This measures
the CPU itself, without the noise: each target in a process of its own, its WSGI app
called directly (no HTTP server, no concurrency) on a fresh database of its own, and per
vote the process's CPU time (Django, the app, psycopg) and the CPU time of its PostgreSQL
backend (read from /proc: PostgreSQL must run on this machine). Verdict: the real rater
flow of load_votes.py's study (signed session cookie, CSRF, four raters in turn after a
Prolific entry). Baseline: the plain view of reference/VOTE-PATH.md §5.

What it leaves out, the same for both: gunicorn's HTTP work (about 0.6 to 1 ms a request
on this machine) and the load generator's.

The two targets run one after the other, so the host's drift between them stays in the
CPU ratio (on this shared machine it moved from 0.44× to 1.14× within an hour).
``--instructions`` counts instead what does not drift: each target's process runs under
valgrind's callgrind, which counts the instructions the timed votes execute in Python,
Django, the app and psycopg (not PostgreSQL's, another process), the same count run after
run (within 0.2 % here) whatever else the machine is doing; about 20 times slower.

Run: .venv/bin/python bench/vote_cpu.py [--votes 2000] [--instructions]
"""

import argparse
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load_votes  # noqa: E402 - a script beside this one, not a package

# Votes before the statistics are refreshed and the timing starts: the tables then hold
# enough rows for the plans a running study gets (after 200, the session read's plan
# scanned the whole assignment table as it grew).
WARM_VOTES = 1500
RATERS = 4
# Set in a child run under callgrind: collect only while the timed votes run.
COUNT_INSTRUCTIONS = False
CALLGRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no")


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL backend so far; None if it is not on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wsgi_post(app: Any, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST JSON to a WSGI app as gunicorn would hand it the request; the decoded answer."""
    data = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **headers,
    }
    status: list[str] = []
    response = app(environ, lambda line, _headers, _exc=None: status.append(line))
    try:
        payload = b"".join(response)
    finally:
        response.close()
    if not status[0].startswith("2"):
        raise load_votes.SetupError(f"POST {path}: {status[0]} {payload[:300]!r}")
    return json.loads(payload)


def measure(
    vote: Callable[[], None], votes: int, settle: Callable[[], None]
) -> dict[str, float | None]:
    """Warm up, refresh the statistics (``settle``, as load_votes.py does: the plans
    must not be those of the empty tables the warm-up began on), then time ``votes``
    calls of ``vote``: CPU ms per vote of this process and of the default connection's
    PostgreSQL backend."""
    from django.db import connection

    for _ in range(WARM_VOTES):
        vote()
    settle()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    collecting(True)
    pg_before, cpu_before = backend_cpu(pid), time.process_time()
    for _ in range(votes):
        vote()
    cpu = time.process_time() - cpu_before
    collecting(False)
    pg_after = backend_cpu(pid)
    pg = None if pg_before is None or pg_after is None else pg_after - pg_before
    return {
        "python_ms": 1000 * cpu / votes,
        "postgres_ms": None if pg is None else 1000 * pg / votes,
    }


def collecting(on: bool) -> None:
    """Turn callgrind's count of this process on or off (a child run by ``--instructions``)."""
    if COUNT_INSTRUCTIONS:
        state = "on" if on else "off"
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)


def callgrind_total(text: str) -> int:
    """The instructions a callgrind output file counted (its ``totals:`` line)."""
    found = re.search(r"^totals:\s+(\d+)", text, flags=re.MULTILINE)
    if found is None:
        raise load_votes.SetupError("callgrind wrote no totals line.")
    return int(found.group(1))


def child_verdict(votes: int, tmp: Path) -> dict[str, float | None]:
    env = load_votes.verdict_env(tmp)
    load_votes.recreate_database(load_votes.VERDICT_DB)
    load_votes.migrate_verdict(env)
    load_votes.seed_verdict(env)  # sets the environment and Django up in this process
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client

    app = WSGIHandler()
    slug = load_votes.SLUG
    raters = []
    for _ in range(RATERS):
        browser = Client(HTTP_HOST="127.0.0.1")
        ids = {key: secrets.token_hex(12) for key in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")}
        browser.get(f"/r/{slug}/", ids, follow=True)
        browser.post(f"/r/{slug}/consent", {"decision": "agree"}, follow=True)
        browser.post(f"/r/{slug}/instructions", follow=True)
        cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in browser.cookies.items())
        headers = {"HTTP_COOKIE": cookie, "HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
        session = wsgi_post(app, f"/api/r/{slug}/session", {}, headers)
        raters.append([headers, session["comparisons"][0]["id"]])
    turn = iter(range(10**9))

    def vote() -> None:
        rater = raters[next(turn) % RATERS]
        body = {
            "assignment": rater[1],
            "answer": "left",
            "response_ms": 1200,
            "client_id": str(uuid.uuid4()),
        }
        answer = wsgi_post(app, f"/api/r/{slug}/votes", body, rater[0])
        rater[1] = answer["session"]["comparisons"][0]["id"]

    return measure(
        vote, votes, lambda: load_votes.analyze(load_votes.VERDICT_DB, load_votes.VERDICT_TABLES)
    )


def child_baseline(votes: int) -> dict[str, float | None]:
    env = load_votes.baseline_env()
    load_votes.recreate_database(load_votes.BASELINE_DB)
    load_votes.migrate_baseline(env)
    (held,) = load_votes.refill_baseline(1)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    app = WSGIHandler()
    state = {"next": held}

    def vote() -> None:
        body = {"assignment_id": state["next"], "choice": "left", "client_id": str(uuid.uuid4())}
        state["next"] = wsgi_post(app, "/vote", body, {})["next"]["id"]

    return measure(
        vote, votes, lambda: load_votes.analyze(load_votes.BASELINE_DB, load_votes.BASELINE_TABLES)
    )


def ratio(figures: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """Baseline over Verdict per vote, for the app (Python), PostgreSQL and both: what
    Verdict's throughput would be against the baseline's if CPU were all."""

    def total(target: str) -> float | None:
        row = figures[target]
        python, postgres = row["python_ms"], row["postgres_ms"]
        return None if python is None or postgres is None else python + postgres

    out: dict[str, float | None] = {}
    for key, pick in (
        ("python", lambda t: figures[t]["python_ms"]),
        ("postgres", lambda t: figures[t]["postgres_ms"]),
        ("both", total),
    ):
        verdict, baseline = pick("verdict"), pick("baseline")
        out[key] = None if not verdict or baseline is None else baseline / verdict
    return out


def report(figures: dict[str, dict[str, float | None]], votes: int) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    ratios = ratio(figures)
    lines = [
        f"CPU per vote, {votes} votes one at a time after {WARM_VOTES} to warm up:",
        "| target | Python ms/vote | PostgreSQL ms/vote | both |",
        "|---|---:|---:|---:|",
    ]
    for target in ("baseline", "verdict"):
        row = figures[target]
        python, postgres = row["python_ms"], row["postgres_ms"]
        both = None if python is None or postgres is None else python + postgres
        lines.append(f"| {target} | {ms(python)} | {ms(postgres)} | {ms(both)} |")
    cells = ", ".join(
        f"{key} {'n/a' if value is None else f'{value:.2f}×'}" for key, value in ratios.items()
    )
    lines.append(f"Baseline CPU / Verdict CPU per vote: {cells}")
    return "\n".join(lines)


def instructions_report(counts: dict[str, float], votes: int) -> str:
    """Instructions per vote of each target's process (``--instructions``) and their ratio."""
    lines = [
        f"Instructions per vote in Python (callgrind), {votes} votes one at a time after "
        f"{WARM_VOTES} to warm up:",
        "| target | instructions/vote |",
        "|---|---:|",
    ]
    lines += [f"| {target} | {counts[target]:,.0f} |" for target in ("baseline", "verdict")]
    lines.append(
        f"Baseline / Verdict instructions per vote: {counts['baseline'] / counts['verdict']:.2f}×"
    )
    return "\n".join(lines)


def run_child(target: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """One target's votes in a process of its own (under callgrind for ``--instructions``):
    its figures, or SetupError with the end of its output."""
    command = [sys.executable, __file__, "--child", target, "--votes", str(args.votes)]
    command += ["--tmp", tmp]
    env = dict(os.environ)
    counted = Path(tmp) / f"{target}.callgrind"
    if args.instructions:
        command = [*CALLGRIND, f"--callgrind-out-file={counted}", *command, "--instructions"]
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts, run after run
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise load_votes.SetupError(f"{target}: {done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if args.instructions:
        figures["instructions"] = callgrind_total(counted.read_text()) / args.votes
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    global COUNT_INSTRUCTIONS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=2000, help="timed votes per target")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the instructions of the timed votes with valgrind's callgrind instead "
        "of timing them (repeatable whatever the host does; Python's side only)",
    )
    parser.add_argument("--child", choices=["verdict", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.votes < 1:
        parser.error("--votes must be at least 1")
    if args.child is not None:
        COUNT_INSTRUCTIONS = args.instructions
        found = (
            child_verdict(args.votes, Path(args.tmp))
            if args.child == "verdict"
            else child_baseline(args.votes)
        )
        print(json.dumps(found))
        return 0
    if args.instructions and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        parser.error("--instructions needs valgrind (Debian: apt-get install valgrind)")
    load_votes.require_postgres()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="verdict-cpu-") as tmp:
        try:
            for target in ("baseline", "verdict"):
                load_votes.step(f"{target}: fresh database, {args.votes} votes")
                figures[target] = run_child(target, args, tmp)
        except load_votes.SetupError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            load_votes.drop_database(load_votes.VERDICT_DB)
            load_votes.drop_database(load_votes.BASELINE_DB)
    if args.instructions:
        counts = {target: float(figures[target]["instructions"]) for target in figures}
        print(instructions_report(counts, args.votes))
    else:
        print(report(figures, args.votes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
