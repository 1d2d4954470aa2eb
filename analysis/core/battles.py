"""Reading vote files: CSV, JSON Lines, or a JSON array (LMArena/FastChat battle logs).

Columns (JSON keys):

``model_a``, ``model_b``
    The two systems.
``winner``
    ``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)`` (``both_bad`` is accepted too).
``rater`` (or ``judge``), optional
    Who voted.
``left``, optional
    Which was shown on the left: ``model_a``, ``model_b`` or the system's name. Without
    it the position is unknown (use ``a_is_left`` when model A was always on the left).
``criterion``, ``category``, ``source``, optional
    Labels for breakdowns.
``item`` (or ``question_id``, ``prompt``), optional
    What was judged, for agreement between raters.
``response_ms``, optional
    Response time in milliseconds.
"""

import csv
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from analysis.core.types import Outcome
from analysis.core.votes import Label, VoteTable, make_vote_table, pair_units

WINNERS = {
    "model_a": Outcome.FIRST,
    "model_b": Outcome.SECOND,
    "tie": Outcome.TIE,
    "tie (bothbad)": Outcome.BOTH_BAD,
    "both_bad": Outcome.BOTH_BAD,
}
ALIASES = {"judge": "rater", "question_id": "item", "prompt": "item"}
LABELS = ("criterion", "category", "source")


class BattleFileError(ValueError):
    """A vote file that cannot be read; the message names the line and column."""


def _records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line or record number, record) for every row of the file."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BattleFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise BattleFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for record in reader:
            yield reader.line_num, record
    elif suffix in {".jsonl", ".ndjson"}:
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BattleFileError(f"{path}, line {line_no}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise BattleFileError(f"{path}, line {line_no}: expected a JSON object")
            yield line_no, record
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BattleFileError(f"{path}, line {exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise BattleFileError(f"{path}: expected a JSON array of battle records")
        for index, record in enumerate(data, start=1):
            if not isinstance(record, dict):
                raise BattleFileError(f"{path}, record {index}: expected a JSON object")
            yield index, record
    else:
        raise BattleFileError(f"{path}: use .csv, .jsonl or .json, not {suffix or 'no suffix'}")


def _where(path: Path, number: int) -> str:
    unit = "record" if path.suffix.lower() == ".json" else "line"
    return f"{path}, {unit} {number}"


def read_battles(
    path: str | Path, *, a_is_left: bool = False, criterion: str | None = None
) -> VoteTable:
    """Read a vote file into a :class:`VoteTable`.

    Parameters
    ----------
    path : str or Path
        A .csv, .jsonl or .json (array) file.
    a_is_left : bool
        Model A was always shown on the left (as in LMArena's interface).
    criterion : str, optional
        Keep only the votes of this criterion.

    Returns
    -------
    VoteTable

    Raises
    ------
    BattleFileError
        Naming the line (or record) and column of the first problem.
    """
    path = Path(path)
    systems: dict[str, int] = {}
    raters: dict[str, int] = {}
    units: dict[str, int] = {}
    labels: dict[str, dict[str, int]] = {name: {} for name in LABELS}
    columns: dict[str, list[Any]] = {
        k: [] for k in ("first", "second", "outcome", "rater", "unit", "ms", "left_known")
    }
    label_codes: dict[str, list[int]] = {name: [] for name in LABELS}
    seen_any = False
    for number, raw in _records(path):
        seen_any = True
        record = {ALIASES.get(k, k): v for k, v in raw.items() if k is not None}
        where = _where(path, number)
        values = {}
        for column in ("model_a", "model_b", "winner"):
            value = record.get(column)
            if value is None or str(value).strip() == "":
                raise BattleFileError(f"{where}, column {column!r}: missing")
            values[column] = str(value).strip()
        if values["model_a"] == values["model_b"]:
            raise BattleFileError(f"{where}, column 'model_b': the same system as model_a")
        winner = values["winner"].lower()
        if winner not in WINNERS:
            raise BattleFileError(
                f"{where}, column 'winner': {values['winner']!r} is not one of "
                "model_a, model_b, tie, tie (bothbad)"
            )
        if criterion is not None and str(record.get("criterion", "")) != criterion:
            continue
        a = systems.setdefault(values["model_a"], len(systems))
        b = systems.setdefault(values["model_b"], len(systems))
        outcome = WINNERS[winner]
        left = str(record.get("left") or "").strip()
        if left:
            if left in ("model_a", values["model_a"]):
                swap = False
            elif left in ("model_b", values["model_b"]):
                swap = True
            else:
                raise BattleFileError(
                    f"{where}, column 'left': {left!r} is neither model_a nor model_b"
                )
            columns["left_known"].append(True)
        else:
            swap = False
            columns["left_known"].append(a_is_left)
        if swap:
            a, b = b, a
            outcome = {Outcome.FIRST: Outcome.SECOND, Outcome.SECOND: Outcome.FIRST}.get(
                outcome, outcome
            )
        columns["first"].append(a)
        columns["second"].append(b)
        columns["outcome"].append(int(outcome))
        rater = str(record.get("rater") or "").strip()
        columns["rater"].append(raters.setdefault(rater, len(raters)) if rater else -1)
        item = str(record.get("item") or "").strip()
        columns["unit"].append(units.setdefault(item, len(units)) if item else -1)
        ms = record.get("response_ms")
        if ms in (None, ""):
            columns["ms"].append(math.nan)
        else:
            try:
                columns["ms"].append(float(str(ms)))
            except (TypeError, ValueError):
                raise BattleFileError(
                    f"{where}, column 'response_ms': {ms!r} is not a number"
                ) from None
        for name in LABELS:
            value = str(record.get(name) or "").strip()
            label_codes[name].append(labels[name].setdefault(value, len(labels[name])))
    if not seen_any:
        raise BattleFileError(f"{path}: no votes")
    if not columns["first"]:
        raise BattleFileError(f"{path}: no votes for criterion {criterion!r}")
    known = columns["left_known"]
    if any(known) and not all(known):
        raise BattleFileError(f"{path}: column 'left' is given for some votes but not all")
    first, second = np.asarray(columns["first"]), np.asarray(columns["second"])
    return make_vote_table(
        systems=tuple(systems),
        first=first,
        second=second,
        outcome=np.asarray(columns["outcome"]),
        position_known=bool(known[0]),
        rater=np.asarray(columns["rater"]),
        raters=tuple(raters),
        unit=pair_units(np.asarray(columns["unit"]), first, second, len(systems)),
        response_ms=np.asarray(columns["ms"], dtype=np.float64),
        labels={
            name: Label(np.asarray(label_codes[name], dtype=np.int64), tuple(labels[name]))
            for name in LABELS
            if len(labels[name]) > 1 or (labels[name] and "" not in labels[name])
        },
    )
