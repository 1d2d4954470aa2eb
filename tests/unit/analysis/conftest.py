import csv
from pathlib import Path

import numpy as np
import pytest

# Published human-judgment data travel with the project (tests/data/README.md).
HUMAN_DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def human_data() -> Path:
    return HUMAN_DATA


def expand_pairs(
    rows: list[tuple[str, str, int, int]],
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(name_1, name_2, wins_1, wins_2) rows into per-vote arrays (first = name_1)."""
    names = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {n: i for i, n in enumerate(names)}
    first, second, outcome = [], [], []
    for a, b, wins_a, wins_b in rows:
        first += [index[a]] * (wins_a + wins_b)
        second += [index[b]] * (wins_a + wins_b)
        outcome += [0] * wins_a + [1] * wins_b
    return names, np.array(first), np.array(second), np.array(outcome)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))
