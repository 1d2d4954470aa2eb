"""The ``verdict`` client's own rules: exit codes a pipeline can tell apart, and a study
file's prompts file sent inline."""

from pathlib import Path

import pytest

from verdict_client.cli import REFUSED, _inline_prompts, _message, main


def test_bad_usage_and_a_missing_token_are_refusals_not_gate_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VERDICT_TOKEN", raising=False)
    assert main([]) == REFUSED  # argparse's own 2 would read as "undecided"
    assert main(["gate", "--study", "s"]) == REFUSED
    assert main(["status", "s"]) == REFUSED
    assert "VERDICT_TOKEN" in capsys.readouterr().err


def test_prompts_files_are_read_here_in_both_formats(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("text,category\na red circle,objects\n")
    (tmp_path / "p.txt").write_text("# a comment\na blue square\n\n")
    csv_data = _inline_prompts({"prompts_file": "p.csv", "prompts": [{"text": "x"}]}, tmp_path)
    assert csv_data == {"prompts": [{"text": "x"}, {"text": "a red circle", "category": "objects"}]}
    assert _inline_prompts({"prompts_file": "p.txt"}, tmp_path) == {
        "prompts": [{"text": "a blue square"}]
    }


def test_the_server_s_message_is_one_line() -> None:
    assert _message('{"detail": "No such study."}') == "No such study."
    assert _message('{"problems": ["a: b", "c: d"]}') == "a: b; c: d"
    assert _message('{"archive": ["Send the zip."]}') == "archive: Send the zip."
    assert _message("<html>oops</html>") == "<html>oops</html>"
