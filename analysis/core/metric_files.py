"""Reading metric values computed elsewhere: a CSV with one row per (system, metric).

Columns: ``system``, ``metric``, ``value``, ``lower_is_better`` (true/false, yes/no,
1/0), optionally ``n`` (how many images the value rests on) and ``asset``. Rows with an
``asset`` are per-asset measures; vote files carry no asset ids (only systems and an
item), so this reader refuses them rather than guess what they would be matched to.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from analysis.core.battles import BattleFileError

REQUIRED = ("system", "metric", "value", "lower_is_better")
OPTIONAL = ("n", "asset")
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


class MetricFileError(BattleFileError):
    """A metrics CSV that cannot be read; the message names the line and column."""


@dataclass(frozen=True)
class MetricValues:
    """One metric's value per system (as reported), its orientation, and the image
    counts where the file gives them."""

    name: str
    lower_is_better: bool
    values: dict[str, float]
    n: dict[str, int]


def read_metrics(path: str | Path) -> tuple[MetricValues, ...]:
    """Read a metrics CSV, metrics in the order of their first row.

    Raises
    ------
    MetricFileError
        Naming the line and column of the first problem: a missing column, a value
        that is not a finite number, an orientation that is not true/false or differs
        between rows of one metric, a system given twice for one metric, or a row with
        an asset id.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise MetricFileError(f"{path}: cannot be opened ({exc.strerror})") from None
    metrics: dict[str, tuple[bool, int, dict[str, float], dict[str, int], dict[str, int]]] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise MetricFileError(
                    f"{path}, line 1: no column {' or '.join(map(repr, missing))} in the header "
                    f"(expected {', '.join(REQUIRED)}[, n][, asset]; found "
                    f"{', '.join(map(repr, header)) or 'none'})"
                )
            at = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                cells = {k: (row[i].strip() if i < len(row) else "") for k, i in at.items()}

                def bad(column: str, problem: str, line: int = line) -> MetricFileError:
                    return MetricFileError(f"{path}, line {line}, column {column!r}: {problem}")

                for column in ("system", "metric"):
                    if not cells[column]:
                        raise bad(column, "missing")
                if cells.get("asset"):
                    raise bad(
                        "asset",
                        "per-asset measures cannot be matched to a vote file (votes carry "
                        "systems and an item, not asset ids); give per-system values only",
                    )
                try:
                    value = float(cells["value"])
                except ValueError:
                    raise bad("value", f"{cells['value']!r} is not a number") from None
                if not math.isfinite(value):
                    raise bad("value", f"{cells['value']!r} is not a finite number")
                flag = cells["lower_is_better"].lower()
                if flag not in _TRUE | _FALSE:
                    raise bad(
                        "lower_is_better",
                        f"{cells['lower_is_better']!r} is not true/false, yes/no or 1/0",
                    )
                lower = flag in _TRUE
                count = None
                if cells.get("n"):
                    try:
                        count = int(cells["n"])
                    except ValueError:
                        count = -1
                    if count < 0:
                        raise bad("n", f"{cells['n']!r} is not a count of images")
                system, name = cells["system"], cells["metric"]
                if name not in metrics:
                    metrics[name] = (lower, line, {}, {}, {})
                first_lower, first_line, values, counts, lines = metrics[name]
                if lower != first_lower:
                    raise bad(
                        "lower_is_better",
                        f"metric {name!r} is {'lower' if first_lower else 'higher'} is better "
                        f"on line {first_line} but not here",
                    )
                if system in values:
                    raise bad(
                        "system", f"{system!r} already has a {name!r} value (line {lines[system]})"
                    )
                values[system], lines[system] = value, line
                if count is not None:
                    counts[system] = count
        except csv.Error as exc:
            raise MetricFileError(f"{path}, line {reader.line_num}: not CSV ({exc})") from None
        except UnicodeDecodeError:
            raise MetricFileError(f"{path}: not UTF-8 text") from None
    if not metrics:
        raise MetricFileError(f"{path}: no metric values")
    return tuple(
        MetricValues(name, lower, values, counts)
        for name, (lower, _, values, counts, _) in metrics.items()
    )
