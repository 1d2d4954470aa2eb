"""Shape aliases and outcome codes shared by analysis.core."""

from enum import IntEnum

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Outcome(IntEnum):
    """A vote's result, relative to the pair's first system (the one shown on the left
    when the position is known)."""

    FIRST = 0
    SECOND = 1
    TIE = 2
    BOTH_BAD = 3


N_OUTCOMES = len(Outcome)
