"""The pieces of bench/load_votes.py that need no server: statistics, the run plan, the
report, and the gunicorn config it shares with deployments."""

import math
import runpy
from pathlib import Path
from types import ModuleType

import pytest

from tests import bench_scripts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_scripts.load("load_votes")


def test_percentile_is_nearest_rank(bench: ModuleType) -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 100) == 100
    assert bench.percentile([7.0], 99) == 7
    assert math.isnan(bench.percentile([], 50))


def test_summary_counts_acknowledged_votes_in_the_window_and_errors_everywhere(
    bench: ModuleType,
) -> None:
    log = bench.LoadLog(window=(10.0, 12.0))
    log.samples = [
        bench.Sample(9.5, 0.5, True),  # warm-up: not measured
        bench.Sample(10.5, 0.010, True),
        bench.Sample(11.0, 0.020, True),
        bench.Sample(11.5, 0.900, False),  # an error: counted, not timed
        bench.Sample(12.5, 0.030, True),  # after the window
    ]
    log.responses.update({"201": 4, "500": 1})
    summary = bench.summarise(log, out_of_pairs=0)
    assert summary.votes_per_s == 1.0
    assert summary.p50_ms == pytest.approx(10)
    assert summary.p99_ms == pytest.approx(20)
    assert summary.errors == 1
    assert summary.sent == 5


def test_plan_runs_baseline_then_verdict_and_realistic_at_the_largest_count(
    bench: ModuleType,
) -> None:
    modes, specs = bench.plan(bench.parse_args(["--raters", "50,200"]))
    assert [m.name for m in modes] == ["stress", "realistic"]
    assert [(s.target, s.raters, s.mode.name) for s in specs] == [
        ("baseline", 50, "stress"),
        ("verdict", 50, "stress"),
        ("baseline", 200, "stress"),
        ("verdict", 200, "stress"),
        ("baseline", 200, "realistic"),
        ("verdict", 200, "realistic"),
    ]
    _, only = bench.plan(bench.parse_args(["--only", "verdict", "--think", "stress"]))
    assert {s.target for s in only} == {"verdict"}


def test_group_cpu_counts_the_process_group_it_is_given(bench: ModuleType) -> None:
    import os

    before, _ = bench.group_cpu_seconds(os.getpgid(0))
    sum(i * i for i in range(3_000_000))  # spend CPU in this group
    after, _ = bench.group_cpu_seconds(os.getpgid(0))
    assert after > before
    assert bench.group_cpu_seconds(None)[0] == 0.0


def test_rater_counts_must_be_positive(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--raters", "0,50"])


def test_report_gives_verdict_its_ratio_to_the_baseline(bench: ModuleType) -> None:
    mode = bench.Mode("stress", None, 2.0, 12.0)

    def result(target: str, rate: float) -> object:
        load = bench.LoadSummary(rate, 5.0, 8.0, 9.0, 100, 100, 0, {"201": 100}, 0.1, 0.0, 0)
        check = bench.DbCheck(100, 100, 0, [])
        return bench.RunResult(bench.RunSpec(target, 50, mode), load, check)

    results = [result("baseline", 1000.0), result("verdict", 800.0)]
    text = bench.report(results, [mode])
    assert "| verdict | 50 | none | 800 |" in text
    assert "0.80×" in text
    assert "0.80× (met)" in text


def test_rounds_alternate_the_targets_and_the_target_is_judged_on_the_median(
    bench: ModuleType,
) -> None:
    args = bench.parse_args(["--raters", "50", "--rounds", "3", "--think", "stress"])
    _, specs = bench.plan(args)
    # A B B A: the order turns each round, so neither target always runs second.
    assert [(s.target, s.round) for s in specs] == [
        ("baseline", 1), ("verdict", 1), ("verdict", 2), ("baseline", 2),
        ("baseline", 3), ("verdict", 3),
    ]  # fmt: skip
    mode = specs[0].mode

    def result(spec: object, rate: float) -> object:
        load = bench.LoadSummary(rate, 5.0, 8.0, 9.0, 100, 100, 0, {"201": 100}, 0.1, 0.0, 0)
        return bench.RunResult(spec, load, bench.DbCheck(100, 100, 0, []))

    # Each round's Verdict run is set against the baseline run of its own round.
    rates = [1000.0, 700.0, 400.0, 500.0, 1000.0, 900.0]
    text = bench.report([result(s, r) for s, r in zip(specs, rates, strict=True)], [mode])
    assert "| verdict #2 | 50 | none | 400 |" in text and "0.80×" in text
    assert "0.80× (median of 3 rounds: 0.70, 0.80, 0.90) (met)" in text
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])


def test_gunicorn_config_runs_two_sync_workers_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:8000")
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert conf["worker_class"] == "sync"
    assert conf["workers"] == 2 * conf["_cores"]()
    assert conf["bind"] == ["0.0.0.0:8000"]
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["workers"] == 3


def test_statistics_are_refreshed_once_at_the_end_of_the_warm_up(bench: ModuleType) -> None:
    import asyncio
    import time

    class Voter:
        has_work = True

        async def vote(self) -> object:
            await asyncio.sleep(0.01)
            return bench.Outcome(201, "", 0.01, "id")

    settled: list[float] = []
    mode = bench.Mode("stress", None, 0.6, 0.4)
    begin = time.perf_counter()
    log = asyncio.run(
        bench.run_load([Voter()], mode, settle=lambda: settled.append(time.perf_counter()))
    )
    start, _stop = log.window
    assert len(settled) == 1
    # Before the measured window opens, after most of the warm-up.
    assert begin < settled[0] <= start - bench.SETTLE_LEAD_S + 0.1
    assert settled[0] >= start - bench.SETTLE_LEAD_S - 0.05
    assert bench.summarise(log, out_of_pairs=0).votes_per_s > 0
