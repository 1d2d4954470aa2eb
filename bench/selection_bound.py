"""How many comparisons any pair-selection design can save on the protocol of
bench/selection.py, at best: the optimal design for the protocol's error measure, given
the true scores, against the balanced design.

The error measure is the RMSE of z-scored estimates against the z-scored truth. For an
efficient estimator (asymptotically: many comparisons), the estimates' error is normal
with covariance M(w)⁺ / N, M(w) = Σ w_ij · I(d_ij) · (e_i − e_j)(e_i − e_j)ᵀ, where w is the
share of comparisons spent on each pair, d_ij = (q_i − q_j) / 1.4865 the Thurstone
difference and I(d) = φ(d)² / (Φ(d)(1 − Φ(d))) one comparison's Fisher information on
it. z-scoring removes the errors along the constant and along the scores themselves, so
the expected squared error is tr(P M⁺ P) / (N n var(q)), P the projection onto the
complement of {1, q}. A design needs N ∝ tr(P M(w)⁺ P) comparisons for a given RMSE, so
the most any design can save against the balanced one (w uniform) is
1 − min_w tr(P M(w)⁺ P) / tr(P M(uniform)⁺ P): an L-optimal design, found by the
multiplicative algorithm (Silvey, Titterington & Torsney 1978; Yu 2010), checked by the
equivalence theorem. It knows the true scores, which no real design does, and it is an
asymptotic figure: at 570 comparisons estimates of far-apart pairs are also shrunk by the
fit's prior, which this ignores.

Run: .venv/bin/python bench/selection_bound.py [--draws 200] [--conditions 20]
"""

import argparse
import itertools
import statistics

import numpy as np
from scipy import stats

THURSTONE_SD = 1.4865
SCORE_RANGE = 5.0


def _criterion(
    weights: np.ndarray, info: np.ndarray, diff: np.ndarray, proj: np.ndarray
) -> tuple[float, np.ndarray]:
    """tr(P M⁺ P) and each pair's derivative magnitude I_k ‖P M⁺ a_k‖²."""
    moment = (diff.T * (weights * info)) @ diff
    inverse = np.linalg.pinv(moment, hermitian=True)
    value = float(np.trace(proj @ inverse @ proj))
    directions = diff @ inverse @ proj  # rows: (P M⁺ a_k)ᵀ
    return value, info * np.einsum("ij,ij->i", directions, directions)


def best_saving(
    scores: np.ndarray, *, iterations: int = 4000, tol: float = 1e-4
) -> tuple[float, float]:
    """(saving of the L-optimal design against the balanced one, equivalence gap)."""
    n = scores.size
    pairs = list(itertools.combinations(range(n), 2))
    diff = np.zeros((len(pairs), n))
    for k, (i, j) in enumerate(pairs):
        diff[k, i], diff[k, j] = 1.0, -1.0
    d = (scores[[i for i, _ in pairs]] - scores[[j for _, j in pairs]]) / THURSTONE_SD
    p = stats.norm.cdf(d)
    info = stats.norm.pdf(d) ** 2 / np.maximum(p * (1 - p), 1e-300)
    basis = np.column_stack([np.ones(n), scores - scores.mean()])
    q, _ = np.linalg.qr(basis)
    proj = np.eye(n) - q @ q.T
    uniform = np.full(len(pairs), 1 / len(pairs))
    balanced, _ = _criterion(uniform, info, diff, proj)
    weights = uniform.copy()
    gap = np.inf
    for _ in range(iterations):
        value, grad = _criterion(weights, info, diff, proj)
        # Equivalence theorem: optimal when no pair's derivative exceeds the criterion.
        gap = grad.max() / value - 1
        if gap < tol:
            break
        weights *= np.sqrt(grad / value)
        weights /= weights.sum()
    value, _ = _criterion(weights, info, diff, proj)
    return 1 - value / balanced, float(gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--conditions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    savings, gaps = [], []
    for _ in range(args.draws):
        scores = np.sort(rng.uniform(0, SCORE_RANGE, args.conditions))
        saving, gap = best_saving(scores - scores.min())
        savings.append(saving)
        gaps.append(gap)
    quartiles = statistics.quantiles(savings, n=4)
    print(
        f"{args.conditions} conditions, {args.draws} draws of true scores from "
        f"U[0, {SCORE_RANGE:g}]: the optimal design (knowing the scores) needs "
        f"{100 * statistics.mean(savings):.1f} % fewer comparisons than the balanced one on "
        f"average (median {100 * statistics.median(savings):.1f} %, quartiles "
        f"{100 * quartiles[0]:.1f}–{100 * quartiles[2]:.1f} %, max {100 * max(savings):.1f} %); "
        f"largest equivalence gap {max(gaps):.1e}"
    )


if __name__ == "__main__":
    main()
