"""Vote files and ``python -m analysis`` as a researcher runs it: no database, no Django."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.core.battles import BattleFileError, read_battles
from analysis.core.types import Outcome

ROOT = Path(__file__).resolve().parents[3]
BATTLES = [
    {
        "model_a": "vicuna-13b",
        "model_b": "alpaca-13b",
        "winner": "model_a",
        "judge": "u1",
        "question_id": "q1",
        "anony": True,
    },
    {
        "model_a": "alpaca-13b",
        "model_b": "vicuna-13b",
        "winner": "model_b",
        "judge": "u2",
        "question_id": "q1",
        "anony": True,
    },
    {
        "model_a": "vicuna-13b",
        "model_b": "koala-13b",
        "winner": "tie",
        "judge": "u1",
        "question_id": "q2",
        "anony": True,
    },
    {
        "model_a": "koala-13b",
        "model_b": "alpaca-13b",
        "winner": "tie (bothbad)",
        "judge": "u3",
        "question_id": "q3",
        "anony": True,
    },
    {
        "model_a": "koala-13b",
        "model_b": "alpaca-13b",
        "winner": "model_a",
        "judge": "u2",
        "question_id": "q3",
        "anony": True,
    },
    {
        "model_a": "alpaca-13b",
        "model_b": "koala-13b",
        "winner": "model_b",
        "judge": "u4",
        "question_id": "q3",
        "anony": True,
    },
    {
        "model_a": "vicuna-13b",
        "model_b": "koala-13b",
        "winner": "model_a",
        "judge": "u4",
        "question_id": "q4",
        "anony": True,
    },
    {
        "model_a": "alpaca-13b",
        "model_b": "vicuna-13b",
        "winner": "model_a",
        "judge": "u3",
        "question_id": "q5",
        "anony": True,
    },
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys, runpy; sys.argv = ['analysis', *sys.argv[1:]];"
        "import analysis.core.cli as c; status = c.main(sys.argv[1:]);"
        "assert not [m for m in sys.modules if m.startswith('django')], 'django was imported';"
        "sys.exit(status)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_fastchat_battle_log_json_array_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "clean_battle.json"
    path.write_text(json.dumps(BATTLES))
    votes = read_battles(path)
    assert votes.systems == ("vicuna-13b", "alpaca-13b", "koala-13b")
    assert votes.raters == ("u1", "u2", "u3", "u4")
    assert votes.outcome.tolist() == [0, 1, 2, 3, 0, 1, 0, 0]
    assert not votes.position_known
    assert (votes.unit >= 0).all() and votes.unit[0] == votes.unit[1]  # same question and pair


def test_csv_and_jsonl_with_left_column(tmp_path: Path) -> None:
    csv_path = tmp_path / "votes.csv"
    csv_path.write_text(
        "model_a,model_b,winner,rater,left,criterion\nA,B,model_a,r1,model_b,quality\nA,B,model_b,r2,A,quality\nA,B,tie,r1,model_a,alignment\n"
    )
    votes = read_battles(csv_path)
    assert votes.position_known
    # Vote 1: A won but B was on the left, so the left system lost.
    assert [votes.systems[i] for i in votes.first] == ["B", "A", "A"]
    assert votes.outcome.tolist() == [Outcome.SECOND, Outcome.SECOND, Outcome.TIE]
    assert read_battles(csv_path, criterion="alignment").n_votes == 1
    jsonl = tmp_path / "votes.jsonl"
    jsonl.write_text("\n".join(json.dumps(b) for b in BATTLES) + "\n")
    assert read_battles(jsonl, a_is_left=True).position_known


@pytest.mark.parametrize(
    ("suffix", "content", "message"),
    [
        (
            ".csv",
            "model_a,model_b,winner\nA,B,model_a\nA,B,model_c\n",
            "line 3, column 'winner': 'model_c' is not one of",
        ),
        (".csv", "model_a,model_b,winner\nA,,model_a\n", "line 2, column 'model_b': missing"),
        (
            ".jsonl",
            '{"model_a": "A", "model_b": "B", "winner": "tie"}\n{oops\n',
            "line 2: not JSON",
        ),
        (
            ".json",
            '[{"model_a": "A", "model_b": "A", "winner": "tie"}]',
            "record 1, column 'model_b': the same system",
        ),
        (".csv", "model_a,model_b,winner,left\nA,B,tie,C\n", "column 'left': 'C' is neither"),
        (".txt", "x", "use .csv, .jsonl or .json"),
    ],
)
def test_bad_files_name_the_line_and_column(
    tmp_path: Path, suffix: str, content: str, message: str
) -> None:
    path = tmp_path / f"votes{suffix}"
    path.write_text(content)
    with pytest.raises(BattleFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_battles(path)


def test_leaderboard_command_prints_a_table_and_json(tmp_path: Path) -> None:
    path = tmp_path / "sim.csv"
    written = _run(
        "simulate",
        "--systems",
        "4",
        "--gap",
        "80",
        "--raters",
        "30",
        "--votes-per-rater",
        "20",
        "--out",
        str(path),
    )
    assert written.returncode == 0, written.stderr
    table = _run("leaderboard", str(path), "--replicates", "200")
    assert table.returncode == 0, table.stderr
    assert "rank  system" in table.stdout and "cluster-robust (sandwich) by rater" in table.stdout
    assert "30 raters (30.0 effective)" in table.stdout
    board = json.loads(
        _run(
            "leaderboard", str(path), "--json", "--replicates", "200", "--anchor", "system-4"
        ).stdout
    )["leaderboard"]
    assert [row["system"] for row in board["rows"]] == [
        "system-1",
        "system-2",
        "system-3",
        "system-4",
    ]
    assert next(r for r in board["rows"] if r["system"] == "system-4")["elo"] == 1000
    for row in board["rows"]:
        assert row["elo_low"] <= row["elo"] <= row["elo_high"]


def test_agreement_and_simulate_commands(tmp_path: Path) -> None:
    path = tmp_path / "battles.json"
    path.write_text(json.dumps(BATTLES))
    result = _run("agreement", str(path), "--json")
    assert result.returncode == 0, result.stderr
    agreement = json.loads(result.stdout)["agreement"]
    assert {"krippendorff_alpha", "fleiss_kappa", "percent_agreement"} <= set(agreement)
    power = _run("simulate", "--elo", "1100,1000", "--power", "--simulations", "20", "--json")
    assert power.returncode == 0 and json.loads(power.stdout)["votes_needed"] > 0


def test_errors_are_clear_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("model_a,model_b,winner\nA,B,draw\n")
    result = _run("leaderboard", str(path))
    assert result.returncode == 2
    assert "line 2, column 'winner': 'draw' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
