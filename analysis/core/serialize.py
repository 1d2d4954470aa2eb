"""Typed results to JSON and back: the one serializer behind the CLI's ``--json``, the
stored study report and the API.

The dataclasses are the schema: every field is written, by name. Numbers follow the
results' policy (:mod:`analysis.core.results`): NaN, which only the agreement and quality
dataclasses carry for "undefined", becomes ``null`` and comes back as NaN; infinities
never appear (an open bound is ``None``).
"""

import dataclasses
import math
from typing import Any, TypeVar

import dacite
import numpy as np

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """A dataclass (or a structure of them) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json(v) for v in value]
    return value


def _float(value: Any) -> Any:
    return math.nan if value is None else value


_CONFIG = dacite.Config(type_hooks={float: _float}, cast=[tuple], strict=True)


def from_json(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass written by :func:`to_json`.

    Raises
    ------
    dacite.DaciteError
        When ``data`` does not fit ``cls`` (a report written by another version).
    """
    return dacite.from_dict(cls, data, config=_CONFIG)
