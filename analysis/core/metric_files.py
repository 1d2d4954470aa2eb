"""Reading metric values computed elsewhere: a CSV with one row per (system, metric).

Columns: ``system``, ``metric``, ``value``, ``lower_is_better`` (true/false, yes/no,
1/0), optionally ``n`` (how many images the value rests on) and ``asset``. Rows with an
``asset`` are per-asset measures (a metric is either per system or per asset, never
both). Vote files carry no asset ids (only systems and an item), so the command line
refuses them rather than guess what they would be matched to; a study in the app
matches them to its assets' public ids.
"""

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    # Per-asset measures: asset id -> value, and the system each asset was given under.
    assets: dict[str, float] = field(default_factory=dict)
    asset_systems: dict[str, str] = field(default_factory=dict)


def read_metrics(path: str | Path) -> tuple[MetricValues, ...]:
    """Read a metrics CSV (per-system values only), metrics in the order of their first
    row; raises MetricFileError as :func:`parse_metrics`."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise MetricFileError(f"{path}: cannot be opened ({exc.strerror})") from None
    with handle:
        return parse_metrics(handle, str(path))


def parse_metric_bytes(
    data: bytes, name: str, *, allow_assets: bool = False
) -> tuple[MetricValues, ...]:
    """:func:`parse_metrics` on an uploaded file's bytes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MetricFileError(f"{name}: not UTF-8 text") from None
    return parse_metrics(io.StringIO(text, newline=""), name, allow_assets=allow_assets)


def parse_metrics(
    lines: Iterable[str], path: str, *, allow_assets: bool = False
) -> tuple[MetricValues, ...]:
    """Read metrics CSV text, metrics in the order of their first row; ``path`` names
    the file in messages.

    Raises
    ------
    MetricFileError
        Naming the line and column of the first problem: a missing column, a value
        that is not a finite number, an orientation that is not true/false or differs
        between rows of one metric, a system (or an asset) given twice for one metric, a
        metric given both per system and per asset, or (unless ``allow_assets``) a row
        with an asset id.
    """
    metrics: dict[str, tuple[bool, int, dict[str, float], dict[str, int], dict[str, int]]] = {}
    per_asset: dict[str, tuple[dict[str, float], dict[str, str], dict[str, int]]] = {}
    reader = csv.reader(lines)
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
            if cells.get("asset") and not allow_assets:
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
            asset = cells.get("asset", "")
            if name not in metrics:
                metrics[name] = (lower, line, {}, {}, {})
            first_lower, first_line, values, counts, lines = metrics[name]
            if lower != first_lower:
                raise bad(
                    "lower_is_better",
                    f"metric {name!r} is {'lower' if first_lower else 'higher'} is better "
                    f"on line {first_line} but not here",
                )
            assets, asset_systems, asset_lines = per_asset.setdefault(name, ({}, {}, {}))
            if bool(asset) != bool(assets) and (values or assets):
                raise bad(
                    "asset",
                    f"metric {name!r} is given per {'asset' if assets else 'system'} on line "
                    f"{first_line}; one metric is either per system or per asset",
                )
            if asset:
                if asset in assets:
                    raise bad(
                        "asset", f"{asset!r} already has a {name!r} value "
                        f"(line {asset_lines[asset]})",
                    )  # fmt: skip
                assets[asset], asset_systems[asset], asset_lines[asset] = value, system, line
                continue
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
        MetricValues(name, lower, values, counts, *per_asset.get(name, ({}, {}, {}))[:2])
        for name, (lower, _, values, counts, _) in metrics.items()
    )
