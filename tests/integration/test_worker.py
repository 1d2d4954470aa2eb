"""A real `celery worker` process runs a generation job against the test database.

The broker is the session's: Redis when `make test` found it (always in CI), otherwise
the embedded file broker that `make demo` uses.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import ChannelError
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from analysis.models import StudyReport
from analysis.reports import ReportOptions, last_vote_id, request_build
from config.celery import app
from generation import jobs
from generation.models import GenerationJob, JobStatus
from generation.tasks import dispatch_job
from studies.models import Asset, AssetKind
from tests.factories import (
    answer_pairs,
    make_judging_rater,
    make_live_study,
    make_prompt,
    make_study,
    make_system,
)

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("default", "gpu")
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _queue_sizes() -> dict[str, int]:
    sizes = {}
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            try:
                channel = conn.default_channel
                declared = channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
            except ChannelError:  # never declared: nothing was ever queued there
                sizes[queue] = 0
            else:
                sizes[queue] = declared.message_count
    return sizes


def _purge() -> None:
    """Empty the queues and, on Redis, the set of unacknowledged messages too: a message
    a killed worker held stays there and is restored to a later worker once the broker's
    visibility timeout passes (an hour), naming rows an earlier test has since deleted."""
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(ChannelError):
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        import redis

        # kombu's Redis transport keeps them under these keys (kombu.transport.redis).
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            "unacked", "unacked_index", "unacked_mutex"
        )


def _worker_env(broker: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=broker,
        VERDICT_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        VERDICT_IMPORT_ROOT=str(settings.IMPORT_ROOT),
        VERDICT_VAR_DIR=str(settings.VAR_DIR),
    )
    return env


def _start_worker(tmp_path: Path, name: str, broker: str = "") -> subprocess.Popen[bytes]:
    """A real `celery worker` process on the test database and broker, once ready."""
    broker = broker or settings.CELERY_BROKER_URL
    if os.environ.get("VERDICT_REQUIRE_SERVERS") == "1" and not broker.startswith("redis://"):
        pytest.fail(f"CI must run the worker test on Redis, not {broker}")
    env = _worker_env(broker)
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES),
        "-P", "solo", "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("celery worker did not start:\n" + log.read_text())
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    _purge()
    process = _start_worker(tmp_path, "test")
    yield process
    _stop(process)
    print((tmp_path / "test.log").read_text()[-20000:])


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_worker_runs_a_job_to_completion_with_retries_and_no_duplicates(worker) -> None:  # type: ignore[no-untyped-def]
    study = make_study(attention_check_rate=0.1)
    make_system(study, name="steady", backend_params={"width": 64, "height": 64})
    # Every item of this system fails once with BackendBusy, then succeeds on retry.
    make_system(study, name="flaky", backend_params={"width": 64, "height": 64, "fail_attempts": 1})
    for text in ("a red circle", "two blue squares", "a yellow star at night"):
        make_prompt(study, text=text)

    job = jobs.start_generation(study=study)  # dispatch is sent when this commits
    # A redelivered dispatch queues every item a second time.
    dispatch_job.delay(job.pk)

    _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, 120, "the job to finish")
    _wait_for(lambda: not any(_queue_sizes().values()), 60, "the queues to drain")
    time.sleep(2)  # the last duplicate may still be running

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.expected, job.done, job.failed) == (6, 6, 0)
    # Each flaky item failed once per delivery before it succeeded; steady items never did.
    flaky_attempts = job.items.filter(system__name="flaky").values_list("attempts", flat=True)
    steady_attempts = job.items.filter(system__name="steady").values_list("attempts", flat=True)
    assert min(flaky_attempts) >= 2 and set(steady_attempts) == {1}
    assert job.retried == sum(flaky_attempts) - 3 >= 3
    outputs = Asset.objects.filter(system__study=study, kind=AssetKind.OUTPUT)
    assert outputs.count() == 6
    assert Asset.objects.filter(system__study=study, kind=AssetKind.ATTENTION).count() == 6
    study.refresh_from_db()
    assert study.status == "ready"
    for asset in outputs:
        assert Path(asset.file.path).read_bytes().startswith(b"\x89PNG")
        assert b"flaky" not in Path(asset.file.path).read_bytes()


def test_worker_runs_an_image_study_on_the_tiny_diffusers_backend_in_batches(  # type: ignore[no-untyped-def]
    worker, tmp_path: Path
) -> None:
    """A diffusers system (a tiny Stable Diffusion built from configuration, saved, and
    loaded by the worker through the backend's own offline loading) makes its items in
    batches of the system's size. Every item ends as one PNG asset with the operational
    figures."""
    from tests import tiny_pipelines as tiny

    model = tiny.build_sd(tmp_path / "sd")
    study = make_study(attention_check_rate=0)
    make_system(study, name="tiny-sd", backend="diffusers",
                backend_params=tiny.image_params(model, batch_size=2))  # fmt: skip
    for text in ("a red cat", "a blue dog", "a cat in a square"):
        make_prompt(study, text=text)
    job = jobs.start_generation(study=study)
    _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, 180, "the job to finish")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.expected, job.done, job.failed) == (3, 3, 0)
    outputs = Asset.objects.filter(system__study=study, kind=AssetKind.OUTPUT)
    assert outputs.count() == 3
    sizes = sorted(asset.generation_meta["batch_size"] for asset in outputs)
    assert sizes == [1, 2, 2]  # two items in one call, the third alone
    for asset in outputs:
        meta = asset.generation_meta
        assert meta["device"] == "cpu" and meta["versions"]["diffusers"]
        assert Path(asset.file.path).read_bytes().startswith(b"\x89PNG")


def _study_with_a_built_report(settings):  # type: ignore[no-untyped-def]
    """A live study with one rater's votes and its report, built by the worker."""
    settings.VERDICT_REPORT_DEBOUNCE = 1
    cache.clear()
    study = make_live_study(systems=3, prompts=3, comparisons_per_session=6)
    answer_pairs(make_judging_rater(study))
    options = ReportOptions(criterion=study.criteria.order_by("order", "pk")[0].key)
    request_build(study=study, options=options)
    _wait_for(
        lambda: StudyReport.objects.filter(study=study, status="ready").exists(), 60, "the report"
    )
    return study, StudyReport.objects.get(study=study)


def test_worker_builds_the_report_and_rebuilds_it_after_votes(worker, settings) -> None:  # type: ignore[no-untyped-def]
    study, first = _study_with_a_built_report(settings)
    assert first.last_vote_id == last_vote_id(study=study) and first.votes_used > 0
    answer_pairs(make_judging_rater(study))  # each vote commits: one refresh is scheduled
    _wait_for(
        lambda: StudyReport.objects.get(pk=first.pk).last_vote_id == last_vote_id(study=study),
        60,
        "the debounced rebuild",
    )
    rebuilt = StudyReport.objects.get(pk=first.pk)
    assert rebuilt.data_hash != first.data_hash and rebuilt.votes_used > first.votes_used


def test_worker_computes_metrics_on_the_gpu_queue_and_the_report_follows(worker, settings) -> None:  # type: ignore[no-untyped-def]
    from metrics import runs
    from metrics.models import AssetMeasure, MetricRun, RunKind

    study, first = _study_with_a_built_report(settings)
    assert first.body is not None and first.body["item_metrics"] == []
    run = runs.request_run(study=study, kind=RunKind.ASSET)  # queued on commit (autocommit)
    _wait_for(lambda: MetricRun.objects.get(pk=run.pk).status in ("done", "failed"), 60, "the run")
    done = MetricRun.objects.get(pk=run.pk)
    outputs = Asset.objects.outputs().filter(system__study=study).count()
    assert (done.status, done.message) == ("done", "")
    assert AssetMeasure.objects.filter(run=done).count() == done.values_written == outputs * 7
    # The new values make the report stale: the worker rebuilds it with them.
    _wait_for(
        lambda: bool((StudyReport.objects.get(pk=first.pk).body or {}).get("item_metrics")),
        60,
        "the rebuild with the measures",
    )


def test_a_worker_killed_mid_job_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """SIGKILL while items run: the pair in hand is neither acknowledged nor finished. A new
    worker runs the rest; `recover` sends again what the dead one held (its message is
    unacknowledged until the broker's visibility timeout); the job ends with one asset
    per item and no stored file left that no row names."""
    from datetime import timedelta

    from generation.recovery import requeue_stalled, sweep_orphan_media

    _purge()
    study = make_study(attention_check_rate=0)
    for name in ("one", "two", "three"):
        make_system(study, name=name, backend_params={"width": 512, "height": 512})
    for n in range(8):
        make_prompt(study, text=f"a red circle number {n}")
    first = _start_worker(tmp_path, "first")
    job = jobs.start_generation(study=study)
    try:
        _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).done >= 2, 60, "items to finish")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = GenerationJob.objects.get(pk=job.pk).done
    assert killed_at < job.expected, "the job finished before the kill: make items slower"
    second = _start_worker(tmp_path, "second")
    resent: list[int] = []
    try:
        _wait_for(
            lambda: GenerationJob.objects.get(pk=job.pk).done > killed_at, 60, "the new worker"
        )

        def settled() -> bool:
            if GenerationJob.objects.get(pk=job.pk).is_finished:
                return True
            # Stalled on what the killed worker held: the sweep sends it again.
            resent.append(requeue_stalled(quiet_for=timedelta(seconds=3)).items)
            return False

        _wait_for(settled, 180, "the job to finish after the kill")
    finally:
        _stop(second)
        _purge()  # what the killed worker held stays unacknowledged in the broker
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.done, job.failed) == (job.expected, 0) == (24, 0)
    outputs = Asset.objects.filter(system__study=study, kind=AssetKind.OUTPUT)
    assert outputs.count() == 24
    assert outputs.values("system", "prompt", "seed").distinct().count() == 24
    # A file written by the killed worker before its row (if any) is an orphan the sweep
    # removes; every asset's file is there.
    sweep_orphan_media(older_than=timedelta(0))
    for asset in outputs:
        assert Path(asset.file.path).read_bytes().startswith(b"\x89PNG")
    # What the dead worker held (a task received and not finished: at most one, as one
    # solo process takes one message at a time) was sent again by the sweep once the job
    # stalled on it. A kill that lands between two tasks leaves nothing held.
    log = (tmp_path / "first.log").read_text()
    task = r"Task generation\.generate_\w+\[[^\]]+\] "
    held = len(re.findall(task + "received", log)) - len(re.findall(task + "succeeded", log))
    assert held in (0, 1), log[-3000:]
    assert sum(resent) >= held
    print(f"killed after {killed_at} of 24 items holding {held}; the sweep sent {sum(resent)}")


class OwnRedis:
    """A Redis server of the test's own, append-only as in docker-compose.yml, on a free
    port: restarting it never touches the machine's shared server."""

    def __init__(self, folder: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--save", "", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        _wait_for(lambda: _pings(client), 20, "our Redis to start")

    def stop(self) -> None:
        """A clean shutdown, as a restart does (the append-only file is flushed)."""
        import redis

        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=self.port).shutdown()
        if self.process is not None:
            self.process.wait(timeout=20)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_a_job_queued_across_a_redis_restart_completes(tmp_path: Path) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    worker = None
    try:
        study = make_study(attention_check_rate=0)
        for name in ("one", "two"):
            make_system(study, name=name, backend_params={"width": 64, "height": 64})
        for n in range(3):
            make_prompt(study, text=f"a blue square number {n}")
        queued = subprocess.run(
            [sys.executable, "manage.py", "generate_media", study.slug],
            cwd=ROOT, env=_worker_env(own.url), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr
        job = GenerationJob.objects.get(study=study)
        assert job.status == JobStatus.QUEUED  # no worker yet: the dispatch waits in Redis
        own.stop()
        own.start()
        worker = _start_worker(tmp_path, "after-restart", broker=own.url)
        _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, 120, "the job")
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert (job.done, job.failed) == (job.expected, 0) == (6, 0)
        assert Asset.objects.outputs().filter(system__study=study).count() == 6
    finally:
        if worker is not None:
            _stop(worker)
        own.stop()
