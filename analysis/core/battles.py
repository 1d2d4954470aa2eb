"""Reading vote files: CSV, JSON Lines, or a JSON array (LMArena/FastChat battle logs).

Any of them may be gzip-compressed (``votes.csv.gz``, ``battles.json.gz``): the format
comes from the suffix before ``.gz``. CSV columns are separated by commas, semicolons or
tabs, whichever the header line uses (``.tsv`` files too). Lines end at LF or CR LF (and
in CSV a lone CR) only: U+2028, U+0085 and the like in a string or quoted field are text.
Files are streamed, never held in memory whole; a JSON array is read with ijson, and with
Python's json (which also reads NaN and Infinity) from the first record ijson refuses.

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

import codecs
import csv
import gzip
import io
import itertools
import json
import math
import re
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, cast

import ijson
import numpy as np

from analysis.core.types import IntArray, Outcome
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

# Every record is reduced to these values, in this order (None where absent).
_COLUMNS = ("model_a", "model_b", "winner", "left", "rater", "item", "response_ms", *LABELS)
_REQUIRED = _COLUMNS[:3]
_KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_GZIP_MAGIC = b"\x1f\x8b"
_WINNER_CODES = {name: int(outcome) for name, outcome in WINNERS.items()}
_SWAPPED = (int(Outcome.SECOND), int(Outcome.FIRST), int(Outcome.TIE), int(Outcome.BOTH_BAD))

_NOT_SPACE = re.compile(r"[^ \t\n\r]")

Values = tuple[Any, ...]


class BattleFileError(ValueError):
    """A vote file that cannot be read; the message names the line and column."""


def _kind(path: Path) -> tuple[str, bool]:
    """The format named by the suffix (before any ``.gz``), and whether it ends in .gz."""
    named_gz = path.suffix.lower() == ".gz"
    suffix = (path.with_suffix("") if named_gz else path).suffix.lower()
    if suffix not in _KINDS:
        shown = suffix or ("no suffix before .gz" if named_gz else "no suffix")
        raise BattleFileError(
            f"{path}: use .csv, .jsonl or .json (or .tsv, .ndjson; each may be .gz), not {shown}"
        )
    return _KINDS[suffix], named_gz


@contextmanager
def _opened(path: Path, *, named_gz: bool) -> Iterator[BinaryIO]:
    """The file's bytes, decompressed when they are gzip data (whatever the name says)."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise BattleFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise BattleFileError(f"{path}: cannot be opened ({exc.strerror})") from None
    with raw:
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(BinaryIO, unzipped)  # typeshed does not count GzipFile as one
        elif named_gz:
            raise BattleFileError(f"{path}: the name ends in .gz but it is not gzip-compressed")
        else:
            yield raw


def _bad_utf8_line(path: Path) -> int:
    """The line of the first byte that is not UTF-8 (looked for only once decoding failed:
    a text stream decodes in chunks, so its error does not say where)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with _opened(path, named_gz=False) as stream:
        while chunk := stream.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + exc.object.count(b"\n", 0, exc.start)
            line += chunk.count(b"\n")
    return line


def _positions(names: Sequence[str | None]) -> tuple[int | None, ...]:
    """Where each of ``_COLUMNS`` is among ``names``; of aliases the last one counts."""
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        if name is not None:
            found[ALIASES.get(name, name)] = index
    return tuple(found.get(column) for column in _COLUMNS)


def _last_of(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the last of ``names`` in the record's key order: a later alias wins."""
    value = None
    for key, found in record.items():
        if key in names:
            value = found
    return value


def _object_values(record: dict[str, Any]) -> Values:
    """The values of a JSON object, in the order of ``_COLUMNS``."""
    get = record.get
    # Spelled out for speed (one call per vote); the aliases are those of ALIASES.
    if "rater" in record and "judge" in record:
        rater = _last_of(record, ("rater", "judge"))
    else:
        rater = get("rater", get("judge"))
    if ("item" in record) + ("question_id" in record) + ("prompt" in record) > 1:
        item = _last_of(record, ("item", "question_id", "prompt"))
    else:
        item = get("item", get("question_id", get("prompt")))
    return (
        get("model_a"),
        get("model_b"),
        get("winner"),
        get("left"),
        rater,
        item,
        get("response_ms"),
        get("criterion"),
        get("category"),
        get("source"),
    )


def _delimiter(header: str, *, tsv: bool) -> str:
    """The candidate that splits the header into the most required columns, then fields."""

    def score(delimiter: str) -> tuple[int, int]:
        names = {name.strip() for name in next(csv.reader([header], delimiter=delimiter), [])}
        return sum(column in names for column in _REQUIRED), len(names)

    candidates = ("\t", ",", ";") if tsv else (",", ";", "\t")
    return max(candidates, key=score)  # ties go to the first


def _header_problem(path: Path, names: list[str], delimiter: str, missing: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:12]) + (", ..." if len(names) > 12 else "")
    message = (
        f"{path}, line 1: no column {' or '.join(map(repr, missing))} in the header; "
        f"found {len(names)} column(s): {shown or 'none'}"
    )
    if len(missing) == len(_REQUIRED):
        message += (
            f" (split at {_DELIMITERS[delimiter]}; columns must be separated by commas, "
            "semicolons or tabs)"
        )
    return message


def _csv_rows(path: Path, stream: BinaryIO, *, tsv: bool) -> Iterator[tuple[int, Values]]:
    # newline="": only \r and \n end lines, and quoted fields keep theirs (csv's advice).
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    header = text.readline()
    if not header:
        return
    delimiter = _delimiter(header, tsv=tsv)
    reader = csv.reader(itertools.chain([header], text), delimiter=delimiter)
    names = [name.strip() for name in next(reader, [])]
    positions = _positions(names)
    missing = [column for column, p in zip(_REQUIRED, positions, strict=False) if p is None]
    if missing:
        raise BattleFileError(_header_problem(path, names, delimiter, missing))
    width = len(names)
    # Rows are padded with one None that absent columns read (as csv.DictReader's restval).
    pick = itemgetter(*(width if p is None else p for p in positions))
    tail: list[str | None] = [None]
    padding = tail * width
    try:
        for row in reader:
            if row:
                cells = row + tail if len(row) == width else (row + padding)[:width] + tail
                yield reader.line_num, pick(cells)
    except csv.Error as exc:  # a field over csv's size limit, say
        raise BattleFileError(f"{path}, line {reader.line_num}: not CSV ({exc})") from None


def _jsonl_rows(path: Path, stream: BinaryIO) -> Iterator[tuple[int, Values]]:
    # Binary lines end at b"\n" only: U+2028 or U+0085 inside a string are not line ends.
    for number, line in enumerate(stream, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if not line or line.isspace():
            continue
        try:
            record = json.loads(line.decode())
        except json.JSONDecodeError as exc:
            raise BattleFileError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise BattleFileError(f"{path}, line {number}: expected a JSON object")
        yield number, _object_values(record)


class _Prepended:
    """A binary stream with the bytes already read to look at its start put back."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            data, self._head = self._head + self._rest.read(), b""
        else:
            data, self._head = self._head[:size], self._head[size:]
        return data


def _array_rows(path: Path, stream: BinaryIO) -> Iterator[tuple[int, Values]]:
    head = stream.read(1 << 16)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    while head and not head.lstrip(b" \t\r\n"):
        head = stream.read(1 << 16)
    head = head.lstrip(b" \t\r\n")
    if not head:
        return
    if head[:1] != b"[":
        hint = " (one JSON object per line is a .jsonl file)" if head[:1] == b"{" else ""
        raise BattleFileError(f"{path}: expected a JSON array of battle records{hint}")
    number = 0
    try:
        records = ijson.items(_Prepended(head, stream), "item", use_float=True)
        for number, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise BattleFileError(f"{path}, record {number}: expected a JSON object")
            yield number, _object_values(record)
    except ijson.JSONError as exc:
        if "UTF8" in str(exc):
            raise BattleFileError(f"{path}, line {_bad_utf8_line(path)}: not UTF-8 text") from None
        # yajl refuses NaN and Infinity, which Python's json writes and reads, and does not
        # say on which line it failed: Python's json takes over from the same record.
        yield from _array_by_json(path, skip=number)


def _array_by_json(path: Path, *, skip: int) -> Iterator[tuple[int, Values]]:
    """The records of a JSON array after the first ``skip``, read a chunk at a time by
    Python's json; its errors name the line as json.loads of the whole file did."""
    decode = json.JSONDecoder().raw_decode
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    text, pos, line, at_end = "", 0, 1, False
    with _opened(path, named_gz=False) as stream:

        def fill() -> bool:
            """Drop the text before ``pos`` and read on; False at the end of the file."""
            nonlocal text, pos, line, at_end
            if at_end:
                return False
            chunk = stream.read(1 << 20)
            at_end = not chunk
            line += text.count("\n", 0, pos)
            text, pos = text[pos:] + decoder.decode(chunk, final=at_end), 0
            return True

        def next_char() -> str:
            """The next character that is not white space ("" at the end of the file)."""
            nonlocal pos
            while (found := _NOT_SPACE.search(text, pos)) is None:
                pos = len(text)
                if not fill():
                    return ""
            pos = found.start()
            return text[pos]

        def fail(message: str, at: int) -> NoReturn:
            where = line + text.count("\n", 0, at)
            raise BattleFileError(f"{path}, line {where}: not JSON ({message})")

        next_char()
        pos += 1  # the "[" that _array_rows saw
        if next_char() == "]":
            pos += 1
        else:
            for number in itertools.count(1):
                next_char()  # raw_decode does not skip white space
                while True:
                    try:
                        record, pos = decode(text, pos)
                        break
                    except json.JSONDecodeError as exc:
                        if not fill():
                            fail(exc.msg, exc.pos)
                if not isinstance(record, dict):
                    raise BattleFileError(f"{path}, record {number}: expected a JSON object")
                if number > skip:
                    yield number, _object_values(record)
                separator = next_char()
                pos += 1
                if separator == "]":
                    break
                if separator != ",":
                    fail("Expecting ',' delimiter", pos - 1)
        if next_char():
            fail("Extra data", pos)


def _label(n: int, at: IntArray, codes: IntArray, values: tuple[str, ...]) -> Label | None:
    """The label of ``n`` votes from those with a value (indices ``at``), coded as though
    "" (no value) had been interned with the values, where it first occurs; None when
    every vote has no value."""
    if at.size == n:
        return Label(codes, values)
    if not at.size:
        return None
    before = np.flatnonzero(at != np.arange(at.size))
    given = int(before[0]) if before.size else at.size  # votes with a value before a blank
    blank = int(codes[:given].max()) + 1 if given else 0
    dense = np.full(n, blank, dtype=np.int64)
    dense[at] = np.where(codes >= blank, codes + 1, codes)
    return Label(dense, (*values[:blank], "", *values[blank:]))


def _collect(
    path: Path,
    records: Iterable[tuple[int, Values]],
    unit_name: str,
    *,
    a_is_left: bool,
    criterion: str | None,
) -> VoteTable:
    """Validate and encode the records into columns (arrays of codes, interned strings)."""
    systems: dict[str, int] = {}
    raters: dict[str, int] = {}
    units: dict[str, int] = {}
    criteria: dict[str, int] = {}
    categories: dict[str, int] = {}
    sources: dict[str, int] = {}
    first, second, outcome = array("q"), array("q"), array("q")
    rater_codes, unit_codes, ms_values = array("q"), array("q"), array("d")
    # Labels are mostly absent: only votes with a value are noted (index, code).
    criterion_at, category_at, source_at = array("q"), array("q"), array("q")
    criterion_codes, category_codes, source_codes = array("q"), array("q"), array("q")
    kept = 0
    n_known = 0
    seen_any = False
    winners, swapped, nan = _WINNER_CODES, _SWAPPED, math.nan

    def where(number: int) -> str:
        return f"{path}, {unit_name} {number}"

    # One flat loop with local names: it runs once per vote, millions of times.
    for number, values in records:
        seen_any = True
        model_a, model_b, winner, left, rater, item, ms, crit, category, source = values
        if model_a is None or not (model_a := str(model_a).strip()):
            raise BattleFileError(f"{where(number)}, column 'model_a': missing")
        if model_b is None or not (model_b := str(model_b).strip()):
            raise BattleFileError(f"{where(number)}, column 'model_b': missing")
        if winner is None or not (winner := str(winner).strip()):
            raise BattleFileError(f"{where(number)}, column 'winner': missing")
        if model_a == model_b:
            raise BattleFileError(f"{where(number)}, column 'model_b': the same system as model_a")
        code = winners.get(winner)
        if code is None and (code := winners.get(winner.lower())) is None:
            raise BattleFileError(
                f"{where(number)}, column 'winner': {winner!r} is not one of "
                "model_a, model_b, tie, tie (bothbad)"
            )
        if criterion is not None and ("" if crit is None else str(crit)) != criterion:
            continue
        # Optional columns are mostly absent: `if value` skips str() and strip() for them.
        if (a := systems.get(model_a)) is None:
            a = systems[model_a] = len(systems)
        if (b := systems.get(model_b)) is None:
            b = systems[model_b] = len(systems)
        if left and (left := str(left).strip()):
            if left == "model_a" or left == model_a:
                pass
            elif left == "model_b" or left == model_b:
                a, b, code = b, a, swapped[code]
            else:
                raise BattleFileError(
                    f"{where(number)}, column 'left': {left!r} is neither model_a nor model_b"
                )
            n_known += 1
        elif a_is_left:
            n_known += 1
        first.append(a)
        second.append(b)
        outcome.append(code)
        kept += 1
        if rater and (rater := str(rater).strip()):
            rater_codes.append(raters.setdefault(rater, len(raters)))
        else:
            rater_codes.append(-1)
        if item and (item := str(item).strip()):
            unit_codes.append(units.setdefault(item, len(units)))
        else:
            unit_codes.append(-1)
        if ms is None or ms == "":
            ms_values.append(nan)
        else:
            try:
                ms_values.append(float(str(ms)))
            except (TypeError, ValueError):
                raise BattleFileError(
                    f"{where(number)}, column 'response_ms': {ms!r} is not a number"
                ) from None
        if crit and (crit := str(crit).strip()):
            criterion_at.append(kept - 1)
            criterion_codes.append(criteria.setdefault(crit, len(criteria)))
        if category and (category := str(category).strip()):
            category_at.append(kept - 1)
            category_codes.append(categories.setdefault(category, len(categories)))
        if source and (source := str(source).strip()):
            source_at.append(kept - 1)
            source_codes.append(sources.setdefault(source, len(sources)))
    if not seen_any:
        raise BattleFileError(f"{path}: no votes")
    if not first:
        raise BattleFileError(f"{path}: no votes for criterion {criterion!r}")
    if 0 < n_known < len(first):
        raise BattleFileError(f"{path}: column 'left' is given for some votes but not all")
    units.clear()  # the table keeps the codes only: free the strings before building it

    def column(codes: "array[int]") -> IntArray:
        return np.frombuffer(codes, dtype=np.int64)  # shares the buffer: no copy

    first_np, second_np = column(first), column(second)
    labels = zip(
        LABELS,
        (criterion_at, category_at, source_at),
        (criterion_codes, category_codes, source_codes),
        (criteria, categories, sources),
        strict=True,
    )
    return make_vote_table(
        systems=tuple(systems),
        first=first_np,
        second=second_np,
        outcome=column(outcome),
        position_known=n_known > 0,
        rater=column(rater_codes),
        raters=tuple(raters),
        unit=pair_units(column(unit_codes), first_np, second_np, len(systems)),
        response_ms=np.frombuffer(ms_values, dtype=np.float64),
        labels={
            name: label
            for name, at, codes, found in labels
            if (label := _label(kept, column(at), column(codes), tuple(found))) is not None
        },
    )


def read_battles(
    path: str | Path, *, a_is_left: bool = False, criterion: str | None = None
) -> VoteTable:
    """Read a vote file into a :class:`VoteTable`.

    The file is streamed: memory grows with the number of votes (a few int64 codes each)
    and of distinct names, not with the size of the file.

    Parameters
    ----------
    path : str or Path
        A .csv (or .tsv), .jsonl (or .ndjson) or .json (array) file, optionally
        gzip-compressed with a further ``.gz`` suffix. CSV columns may be separated by
        commas, semicolons or tabs.
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
        Naming the line (or record) and column of the first problem: a missing or
        unknown file type, text that is not UTF-8 or not JSON, a header without the
        required columns, a bad value, or a damaged gzip file.
    """
    path = Path(path)
    kind, named_gz = _kind(path)
    with _opened(path, named_gz=named_gz) as stream:
        records: Iterator[tuple[int, Values]]
        if kind == "json":
            records = _array_rows(path, stream)
        elif kind == "jsonl":
            records = _jsonl_rows(path, stream)
        else:
            records = _csv_rows(path, stream, tsv=kind == "tsv")
        unit_name = "record" if kind == "json" else "line"
        try:
            return _collect(path, records, unit_name, a_is_left=a_is_left, criterion=criterion)
        except UnicodeDecodeError:
            raise BattleFileError(f"{path}, line {_bad_utf8_line(path)}: not UTF-8 text") from None
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(stream, gzip.GzipFile):
                raise BattleFileError(f"{path}: damaged or cut-short gzip data ({exc})") from None
            raise BattleFileError(f"{path}: cannot be read ({exc})") from None
