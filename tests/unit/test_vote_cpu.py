"""bench/vote_cpu.py's arithmetic: the ratios it prints and what it says when PostgreSQL's
CPU could not be read (a server on another machine)."""

from types import ModuleType

import pytest

from tests import bench_scripts


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_scripts.load("vote_cpu")


def test_ratios_are_the_baselines_cpu_over_verdicts(bench: ModuleType) -> None:
    figures = {
        "baseline": {"python_ms": 1.2, "postgres_ms": 0.4},
        "verdict": {"python_ms": 2.0, "postgres_ms": 1.2},
    }
    ratios = bench.ratio(figures)
    assert ratios["python"] == pytest.approx(0.6)
    assert ratios["postgres"] == pytest.approx(1 / 3)
    assert ratios["both"] == pytest.approx(0.5)
    text = bench.report(figures, 100)
    assert "| verdict | 2.000 | 1.200 | 3.200 |" in text
    assert "both 0.50×" in text


def test_an_unreadable_backend_gives_no_postgres_figure(bench: ModuleType) -> None:
    figures = {
        "baseline": {"python_ms": 1.2, "postgres_ms": None},
        "verdict": {"python_ms": 2.0, "postgres_ms": 1.0},
    }
    ratios = bench.ratio(figures)
    assert ratios["postgres"] is None and ratios["both"] is None
    assert ratios["python"] == pytest.approx(0.6)
    assert "postgres n/a" in bench.report(figures, 100)
    assert bench.backend_cpu(2**22 + 12345) is None  # no such process


def test_instructions_come_from_callgrinds_totals_line(bench: ModuleType) -> None:
    counted = "events: Ir\nsummary: 0\nfn=(1) main\n3 12\ntotals: 343174797\n"
    assert bench.callgrind_total(counted) == 343_174_797
    with pytest.raises(bench.load_votes.SetupError):
        bench.callgrind_total("events: Ir\nsummary: 0\n")
    text = bench.instructions_report({"baseline": 3.4e6, "verdict": 5.1e6}, 200)
    assert "| verdict | 5,100,000 |" in text
    assert "Baseline / Verdict instructions per vote: 0.67×" in text


def test_instructions_need_valgrind(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    # Refused before anything else is tried (PostgreSQL's absence would exit too).
    monkeypatch.setattr(bench.load_votes, "require_postgres", lambda: pytest.fail("went on"))
    with pytest.raises(SystemExit) as exited:
        bench.main(["--instructions"])
    assert exited.value.code == 2  # argparse's usage error
    assert "--instructions needs valgrind" in capsys.readouterr().err
