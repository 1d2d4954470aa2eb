"""``python -m analysis correlate``: a votes file and a metrics CSV, as a new user runs it."""

import json
from pathlib import Path

import pytest

from analysis.core.cli import main
from analysis.core.correlation import MetricComparison
from analysis.core.serialize import from_json

METRICS = (
    "system,metric,value,lower_is_better,n\n"
    "system-1,fid,12.5,true,500\n"
    "system-2,fid,10,true,500\n"
    "system-3,fid,20,true,500\n"
    "system-4,fid,30,true,500\n"
)


@pytest.fixture(scope="module")
def votes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("votes") / "votes.csv"
    assert main(["simulate", "--systems", "4", "--out", str(path), "--seed", "1"]) == 0
    return path


def _metrics(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    return path


def test_table_shows_coefficients_disagreements_and_small_n(
    votes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["correlate", str(votes), str(_metrics(tmp_path, METRICS)), "--replicates", "100"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for text in ("Kendall tau-b", "Spearman rho", "Pearson r", "exact permutation (4! = 24"):
        assert text in out
    assert "people prefer system-1 to system-2" in out
    assert "p of 0.083" in out


def test_json_is_the_typed_result(
    votes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["correlate", str(votes), str(_metrics(tmp_path, METRICS)), "--json"]
    assert main([*args, "--replicates", "100"]) == 0
    data = json.loads(capsys.readouterr().out)
    result = from_json(MetricComparison, data["metrics"][0])
    assert result.correlation.metric == "fid" and result.correlation.lower_is_better
    assert result.correlation.coefficient("spearman").value == pytest.approx(0.8)
    assert [(d.preferred, d.other) for d in result.disagreements] == [("system-1", "system-2")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("system,metric,value\nsystem-1,fid,1\n", "line 1: no column 'lower_is_better'"),
        (METRICS + "system-5,fid,abc,true,1\n", "line 6, column 'value': 'abc' is not a number"),
        (METRICS + "system-5,fid,nan,true,1\n", "line 6, column 'value': 'nan' is not a finite"),
        (METRICS + "system-5,fid,1,maybe,1\n", "line 6, column 'lower_is_better': 'maybe'"),
        (METRICS + "system-5,fid,1,false,1\n", "line 6, column 'lower_is_better': metric 'fid'"),
        (METRICS + "system-1,fid,1,true,1\n", "line 6, column 'system': 'system-1' already"),
        (METRICS + "system-5,fid,1,true,-3\n", "line 6, column 'n': '-3'"),
        (METRICS + ",fid,1,true,1\n", "line 6, column 'system': missing"),
        (
            "system,metric,value,lower_is_better,asset\nsystem-1,sharp,1,false,a1\n",
            "line 2, column 'asset': per-asset measures",
        ),
        ("system,metric,value,lower_is_better\n", "no metric values"),
        ("system,metric,value,lower_is_better\nnobody,fid,1,true\n", "none of its systems"),
    ],
)
def test_bad_metric_files_name_line_and_column(
    votes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    assert main(["correlate", str(votes), str(_metrics(tmp_path, text))]) == 2
    assert message in capsys.readouterr().err


def test_help_says_per_system_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["correlate", "--help"])
    assert "Per-system values only" in " ".join(capsys.readouterr().out.split())
