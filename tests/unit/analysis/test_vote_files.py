"""Vote files as people have them: odd line breaks, CRLF, gzip, semicolons and tabs."""

import csv
import gzip
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.core.battles import ALIASES, BattleFileError, read_battles
from analysis.core.votes import VoteTable

# A prompt with everything str.splitlines() would break a record at, and CSV's specials.
PROMPT = 'Say "hi", then; stop\u2028now\u0085ok\x1eend\nnext\tline'
RECORDS: list[dict[str, Any]] = [
    {
        "model_a": "vicuna-13b",
        "model_b": "alpaca-13b",
        "winner": "model_a",
        "judge": "u1",
        "prompt": PROMPT,
        "left": "model_a",
        "criterion": "quality",
        "response_ms": 1500,
    },
    {
        "model_a": "alpaca-13b",
        "model_b": "vicuna-13b",
        "winner": "tie (bothbad)",
        "judge": "u2",
        "prompt": PROMPT,
        "left": "vicuna-13b",
        "criterion": "quality",
        "response_ms": 12.5,
    },
    {
        "model_a": "koala-13b",
        "model_b": "vicuna-13b",
        "winner": "tie",
        "judge": "u1",
        "prompt": "second prompt",
        "left": "model_b",
        "criterion": "safety",
        "response_ms": "",
    },
    {
        "model_a": "koala-13b",
        "model_b": "alpaca-13b",
        "winner": "model_b",
        "judge": "",
        "prompt": "",
        "left": "koala-13b",
        "criterion": "safety",
        "response_ms": 800,
    },
]
HEADER = ("model_a", "model_b", "winner")


def _csv_text(records: list[dict[str, Any]], delimiter: str = ",", newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(records[0]), delimiter=delimiter, lineterminator=newline
    )
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _jsonl_text(records: list[dict[str, Any]], newline: str = "\n") -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + newline for r in records)


def _json_text(records: list[dict[str, Any]], newline: str = "\n") -> str:
    return "[" + ("," + newline).join(json.dumps(r, ensure_ascii=False) for r in records) + "]"


WRITERS: dict[str, Callable[..., str]] = {
    "csv": _csv_text,
    "jsonl": _jsonl_text,
    "json": _json_text,
}


def _write(path: Path, text: str, *, compress: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def assert_same_table(got: VoteTable, expected: VoteTable) -> None:
    assert got.systems == expected.systems
    assert got.raters == expected.raters
    assert got.position_known == expected.position_known
    for name in ("first", "second", "outcome", "rater", "unit", "response_ms"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
        assert getattr(got, name).dtype == getattr(expected, name).dtype, name
    assert got.labels.keys() == expected.labels.keys()
    for name, label in got.labels.items():
        assert label.values == expected.labels[name].values, name
        np.testing.assert_array_equal(label.codes, expected.labels[name].codes, err_msg=name)


def test_jsonl_keeps_u2028_inside_a_prompt_string(tmp_path: Path) -> None:
    path = _write(tmp_path / "votes.jsonl", _jsonl_text(RECORDS))
    assert "\u2028" in path.read_text() and "\u0085" in path.read_text()  # raw, not escaped
    votes = read_battles(path)
    assert votes.n_votes == 4
    assert votes.unit[0] == votes.unit[1] != votes.unit[2]  # one prompt, one pair


def test_csv_keeps_u0085_inside_a_quoted_field(tmp_path: Path) -> None:
    rows = [{**r, "note": "first\u0085second"} for r in RECORDS]
    votes = read_battles(_write(tmp_path / "votes.csv", _csv_text(rows)))
    assert votes.n_votes == 4
    assert votes.outcome.tolist() == [0, 3, 2, 1]
    assert votes.labels["criterion"].values == ("quality", "safety")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_crlf_files_read_as_lf_files(tmp_path: Path, kind: str) -> None:
    writer = WRITERS[kind]
    crlf = read_battles(_write(tmp_path / f"crlf.{kind}", writer(RECORDS, newline="\r\n")))
    lf = read_battles(_write(tmp_path / f"lf.{kind}", writer(RECORDS)))
    assert_same_table(crlf, lf)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_gzip_files_are_read_by_the_suffix_before_gz(tmp_path: Path, kind: str) -> None:
    text = WRITERS[kind](RECORDS)
    packed = read_battles(_write(tmp_path / f"votes.{kind}.gz", text, compress=True))
    assert_same_table(packed, read_battles(_write(tmp_path / f"votes.{kind}", text)))


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [("votes.csv", ";"), ("votes.csv", "\t"), ("votes.tsv", "\t"), ("votes.tsv", ",")],
)
def test_semicolon_and_tab_separated_csv(tmp_path: Path, name: str, delimiter: str) -> None:
    votes = read_battles(_write(tmp_path / name, _csv_text(RECORDS, delimiter=delimiter)))
    assert_same_table(votes, read_battles(_write(tmp_path / "comma.csv", _csv_text(RECORDS))))


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("model_a|model_b|winner\nA|B|tie\n", "'model_a|model_b|winner'"),
        ("system_a,system_b,result\nA,B,tie\n", "'system_a', 'system_b', 'result'"),
        ("\nA,B,tie\n", "found 0 column(s): none"),
    ],
)
def test_csv_header_without_the_columns_says_what_it_found(
    tmp_path: Path, content: str, found: str
) -> None:
    with pytest.raises(BattleFileError) as caught:
        read_battles(_write(tmp_path / "votes.csv", content))
    message = str(caught.value)
    assert "line 1: no column 'model_a' or 'model_b' or 'winner' in the header" in message
    assert found in message
    assert "commas, semicolons or tabs" in message


def test_csv_header_missing_one_column_names_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "votes.csv", "model_a;model_b;judge\nA;B;u1\n")
    with pytest.raises(BattleFileError, match=r"no column 'winner' in the header; found 3") as e:
        read_battles(path)
    assert "'model_a', 'model_b', 'judge'" in str(e.value)
    assert "semicolons or tabs" not in str(e.value)  # the delimiter was clearly understood


def test_truncated_json_array_is_a_battle_file_error(tmp_path: Path) -> None:
    text = _json_text(RECORDS)
    path = _write(tmp_path / "votes.json", text[: text.index('"judge": "u2"')])
    with pytest.raises(BattleFileError, match=r"votes\.json, line 2: not JSON \(Expecting"):
        read_battles(path)


BIG = _json_text(RECORDS * 3000)  # several MiB: errors past the first chunks read


@pytest.mark.parametrize(
    "broken",
    [
        BIG[: len(BIG) // 2],
        BIG[: BIG.rindex(",") + 1],
        BIG[:-1],
        BIG.replace('"winner": "tie"', '"winner" "tie"'),
        BIG[: len(BIG) // 3] + "}" + BIG[len(BIG) // 3 :],
        BIG + " x",
        BIG[:-1] + ",]",
    ],
    ids=["cut", "cut-after-comma", "no-bracket", "no-colon", "extra-brace", "garbage", "comma"],
)
def test_bad_json_array_names_the_line_as_json_loads_does(tmp_path: Path, broken: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(broken)
    where = f"line {expected.value.lineno}: not JSON ({expected.value.msg})"
    with pytest.raises(BattleFileError, match=re.escape(where)):
        read_battles(_write(tmp_path / "votes.json", broken))


def test_json_array_with_nan_and_infinity_as_json_loads_reads_it(tmp_path: Path) -> None:
    records = [{**r, "response_ms": None, "score": 1.0} for r in RECORDS * 1000]
    text = _json_text(records)
    # NaN past the first chunk ijson reads: the records before it are not counted twice.
    half = len(text) // 2
    nan = text[:half] + text[half:].replace(
        '"response_ms": null, "score": 1.0', '"response_ms": NaN, "score": -Infinity'
    )
    votes = read_battles(_write(tmp_path / "nan.json", nan))
    assert_same_table(votes, read_battles(_write(tmp_path / "null.json", text)))
    assert votes.n_votes == 4000


def test_json_array_with_a_non_object_element(tmp_path: Path) -> None:
    path = _write(tmp_path / "votes.json", json.dumps([RECORDS[0], ["not", "a", "record"]]))
    with pytest.raises(BattleFileError, match=r"record 2: expected a JSON object"):
        read_battles(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_jsonl_text(RECORDS), r"expected a JSON array of battle records \(one JSON object per"),
        ('"votes"', r"expected a JSON array of battle records$"),
        ("", r"votes\.json: no votes"),
        ("  []", r"votes\.json: no votes"),
        ('["votes"]', r"record 1: expected a JSON object"),
        ("[1, 2", r"record 1: expected a JSON object"),
    ],
)
def test_json_file_that_is_not_an_array_of_records(
    tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(BattleFileError, match=message):
        read_battles(_write(tmp_path / "votes.json", content))


def test_gz_name_on_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    path = _write(tmp_path / "votes.csv.gz", _csv_text(RECORDS))
    with pytest.raises(
        BattleFileError, match=r"votes\.csv\.gz: the name ends in \.gz but it is not"
    ):
        read_battles(path)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_cut_short_gzip_is_a_battle_file_error(tmp_path: Path, kind: str) -> None:
    data = gzip.compress(WRITERS[kind](RECORDS * 50).encode())
    path = tmp_path / f"votes.{kind}.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BattleFileError, match=r"damaged or cut-short gzip data"):
        read_battles(path)


def test_unknown_suffix_names_the_suffix_before_gz(tmp_path: Path) -> None:
    with pytest.raises(BattleFileError, match=r"use \.csv, \.jsonl or \.json .*not \.txt$"):
        read_battles(_write(tmp_path / "votes.txt.gz", "x", compress=True))


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_text_that_is_not_utf8_names_the_line(tmp_path: Path, kind: str) -> None:
    text = WRITERS[kind](RECORDS * 2000)  # past the first chunk a text stream decodes
    data = text.encode().replace(b"second prompt", b"second \xff prompt")
    path = tmp_path / f"votes.{kind}"
    path.write_bytes(data)
    line = 1 + data[: data.index(b"\xff")].count(b"\n")
    with pytest.raises(BattleFileError, match=rf"votes\.{kind}, line {line}: not UTF-8 text"):
        read_battles(path)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_utf8_byte_order_mark_is_skipped(tmp_path: Path, kind: str) -> None:
    text = WRITERS[kind](RECORDS)
    path = tmp_path / f"votes.{kind}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert_same_table(read_battles(path), read_battles(_write(tmp_path / f"plain.{kind}", text)))


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_json_aliases_match_the_csv_header(tmp_path: Path, alias: str) -> None:
    canonical = ALIASES[alias]
    # The alias before and after the canonical key: the later key wins in both formats.
    for order in ((canonical, alias), (alias, canonical)):
        records = [
            {**{k: v for k, v in r.items() if k in HEADER}, order[0]: "early", order[1]: f"late{i}"}
            for i, r in enumerate(RECORDS)
        ]
        from_json = read_battles(_write(tmp_path / "votes.json", _json_text(records)))
        from_csv = read_battles(_write(tmp_path / "votes.csv", _csv_text(records)))
        assert_same_table(from_json, from_csv)
        if canonical == "rater":
            assert from_json.raters == ("late0", "late1", "late2", "late3")
        else:
            assert len(set(from_json.unit.tolist())) == 4


def test_every_format_gives_the_same_vote_table(tmp_path: Path) -> None:
    records = RECORDS * 3
    expected = read_battles(_write(tmp_path / "votes.json", _json_text(records)))
    assert expected.n_votes == 12 and expected.position_known
    assert expected.labels["criterion"].values == ("quality", "safety")
    assert np.isnan(expected.response_ms[2]) and expected.response_ms[1] == 12.5
    files = {
        "votes.jsonl": _jsonl_text(records),
        "votes.ndjson": _jsonl_text(records, newline="\r\n"),
        "votes.csv": _csv_text(records),
        "votes.tsv": _csv_text(records, delimiter="\t", newline="\r\n"),
        "semicolons.csv": _csv_text(records, delimiter=";"),
    }
    for name, text in files.items():
        assert_same_table(read_battles(_write(tmp_path / name, text)), expected)
        packed = _write(tmp_path / f"{name}.gz", text, compress=True)
        assert_same_table(read_battles(packed), expected)
    only_safety = read_battles(tmp_path / "votes.csv.gz", criterion="safety")
    assert only_safety.n_votes == 6 and only_safety.systems == (
        "koala-13b",
        "vicuna-13b",
        "alpaca-13b",
    )


def test_gzip_data_under_a_plain_name_is_read_too(tmp_path: Path) -> None:
    text = _csv_text(RECORDS)
    packed = read_battles(_write(tmp_path / "votes.csv", text, compress=True))
    assert_same_table(packed, read_battles(_write(tmp_path / "plain.csv", text)))


def test_csv_the_csv_module_refuses_names_the_line(tmp_path: Path) -> None:
    rows = [dict(RECORDS[0]), {**RECORDS[1], "prompt": "x" * 200_000}]
    # The first record spans lines 2 and 3: its prompt holds a newline.
    with pytest.raises(BattleFileError, match=r"votes\.csv, line 4: not CSV \(field larger"):
        read_battles(_write(tmp_path / "votes.csv", _csv_text(rows)))


@pytest.mark.parametrize(
    ("criteria", "values", "codes"),
    [
        (["x", "", "y", "", "x"], ("x", "", "y"), [0, 1, 2, 1, 0]),
        (["", "x", " y", None, 0], ("", "x", "y"), [0, 1, 2, 0, 0]),
        (["x", "y", "x"], ("x", "y"), [0, 1, 0]),
        (["", None, "  "], None, None),
    ],
)
def test_votes_without_a_label_value_are_coded_as_empty(
    tmp_path: Path, criteria: list[Any], values: tuple[str, ...] | None, codes: list[int] | None
) -> None:
    records = [
        {**dict(zip(HEADER, ("A", "B", "tie"), strict=True)), "criterion": c} for c in criteria
    ]
    votes = read_battles(_write(tmp_path / "votes.json", json.dumps(records)))
    if values is None:
        assert "criterion" not in votes.labels
    else:
        assert votes.labels["criterion"].values == values
        assert votes.labels["criterion"].codes.tolist() == codes
