"""Cluster-robust (sandwich) covariance of Bradley–Terry scores, clustered by rater.

Votes of one rater share that rater's taste and habits, so they are not independent.
The sandwich estimator keeps the model's information as the "bread" and replaces the
model's variance of the score by the observed spread of the per-rater score sums:

    V = H⁻¹ (c Σ_g s_g s_gᵀ) H⁻¹,   c = G / (G − 1)   (CR1)

with H the penalised information at the estimate and s_g the score (gradient of the
log-likelihood) summed over the votes of rater g. Intervals use Student's t with G* − 1
degrees of freedom, G* the effective number of raters (Kish's, from
:func:`analysis.core.graph.effective_raters`), the small-sample correction for few or
unequal clusters.

References
----------
Liang & Zeger (1986), Biometrika 73(1); Cameron & Miller (2015), "A practitioner's
guide to cluster-robust inference", J. Human Resources 50(2), sections II–VI; Carter,
Schnepel & Steigerwald (2017), "Asymptotic behavior of a t-test robust to cluster
heterogeneity", Review of Economics and Statistics 99(4).
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.sparse import csr_matrix

from analysis.core.bt import BTFit, _probabilities, rows_of
from analysis.core.counts import PairCounts
from analysis.core.types import N_OUTCOMES, FloatArray


@dataclass(frozen=True)
class ClusterCovariance:
    """``cov``: covariance of the centred scores (systems × systems); ``clusters``: G."""

    cov: FloatArray
    clusters: int

    @property
    def standard_errors(self) -> FloatArray:
        return np.sqrt(np.clip(np.diag(self.cov), 0, None))

    @property
    def difference_se(self) -> FloatArray:
        variance = np.diag(self.cov)
        return np.sqrt(np.clip(variance[:, None] + variance[None, :] - 2 * self.cov, 0, None))

    def quantile(self, level: float, effective: float | None = None) -> float:
        """Student's t quantile with G − 1 degrees of freedom, or G* − 1 with an
        effective number of clusters G* (unequal clusters carry less information than
        their count: Carter, Schnepel & Steigerwald 2017)."""
        clusters = self.clusters if effective is None else min(effective, self.clusters)
        return float(stats.t.ppf(1 - (1 - level) / 2, max(clusters - 1, 1)))


def _cell_scores(fit: BTFit) -> csr_matrix:
    """Score contribution of one vote in each (design row, outcome) cell: a sparse
    (rows × 4, parameters) matrix."""
    design = fit.design
    rows, m, k = design.i.size, design.n_systems, design.n_params
    pf, ps, pt, _ = _probabilities(fit.params, design)
    unit = np.broadcast_to(np.eye(N_OUTCOMES), (rows, N_OUTCOMES, N_OUTCOMES))
    a, b, t = design.split(unit)  # per (row, outcome): the vote as first/second win, tie
    n = a + b + t
    first = a + t / 2 - n * (pf + pt / 2)[:, None]
    second = b + t / 2 - n * (ps + pt / 2)[:, None]
    cell = np.arange(rows * N_OUTCOMES)
    entries = [
        (first.ravel(), np.repeat(design.i, N_OUTCOMES)),
        (second.ravel(), np.repeat(design.j, N_OUTCOMES)),
    ]
    if design.position:
        entries.append(((a - n * pf[:, None]).ravel(), np.full(cell.size, m)))
    if design.fit_nu:
        entries.append(((t - n * pt[:, None]).ravel(), np.full(cell.size, k - 1)))
    values = np.concatenate([v for v, _ in entries])
    columns = np.concatenate([c for _, c in entries])
    return csr_matrix(
        (values, (np.tile(cell, len(entries)), columns)), shape=(cell.size, k), dtype=np.float64
    )


def cluster_covariance(fit: BTFit, counts: PairCounts, tables: csr_matrix) -> ClusterCovariance:
    """Cluster-robust covariance of ``fit``'s centred scores.

    Parameters
    ----------
    fit : BTFit
        The point fit of ``counts``.
    counts : PairCounts
        The count table ``fit`` was fitted on.
    tables : scipy.sparse.csr_matrix
        Per-cluster count tables (clusters × rows·4) in ``counts``' rows, from
        :func:`analysis.core.bootstrap.rater_tables`.

    Returns
    -------
    ClusterCovariance

    Raises
    ------
    ValueError
        With fewer than two clusters, or tables that do not belong to ``counts``.

    Example
    -------
    >>> from analysis.core.bootstrap import rater_tables
    >>> from analysis.core.bt import fit_bradley_terry
    >>> from analysis.core.counts import count_pairs
    >>> first, second = np.array([0, 1, 0, 2, 1, 2]), np.array([1, 2, 2, 0, 0, 1])
    >>> outcome, rater = np.array([0, 0, 1, 0, 0, 1]), np.array([0, 0, 1, 1, 2, 2])
    >>> c = count_pairs(first, second, outcome, n_systems=3, ordered=False)
    >>> tables, _ = rater_tables(c, first, second, outcome, rater)
    >>> cluster_covariance(fit_bradley_terry(c), c, tables).cov.shape
    (3, 3)
    """
    clusters = tables.shape[0]
    if clusters < 2:
        raise ValueError(f"a cluster-robust covariance needs at least 2 clusters, not {clusters}")
    if tables.shape[1] != counts.first.size * N_OUTCOMES:
        raise ValueError("the cluster tables do not belong to these counts (columns differ)")
    rows = rows_of(fit, counts)
    pick = (rows[:, None] * N_OUTCOMES + np.arange(N_OUTCOMES)).ravel()
    per_cluster = np.asarray((tables[:, pick] @ _cell_scores(fit)).toarray())
    meat = per_cluster.T @ per_cluster * (clusters / (clusters - 1))
    bread = fit.inverse_information
    full = bread @ meat @ bread
    m = fit.design.n_systems
    centre = np.eye(m) - 1.0 / m
    return ClusterCovariance(np.asarray(centre @ full[:m, :m] @ centre), clusters)
