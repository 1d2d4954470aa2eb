"""QuerySets into arrays, once: the only place analysis reads the database for votes."""

import itertools
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import Case, Count, IntegerField, Max, Value, When

from analysis.core.types import Outcome
from analysis.core.votes import Label, VoteTable, make_vote_table, pair_units
from metrics.models import AssetMeasure, MetricValue
from studies.assignments import passes
from studies.models import (
    Answer,
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    Criterion,
    Prompt,
    Rater,
    RaterSource,
    Study,
    Vote,
)

OUTCOME = {
    Answer.LEFT: Outcome.FIRST,
    Answer.RIGHT: Outcome.SECOND,
    Answer.TIE: Outcome.TIE,
    Answer.BOTH_BAD: Outcome.BOTH_BAD,
}


@dataclass(frozen=True)
class StudyVotes:
    table: VoteTable
    rater_ids: tuple[int, ...]  # database id of each rater code
    simulated: np.ndarray  # per vote: cast by a simulated rater
    check_rater: np.ndarray  # per attention check: rater code
    check_passed: np.ndarray


def _codes(ids: np.ndarray, name_of: dict[int, str]) -> Label:
    """A label from row ids and each id's name: codes index the names, sorted."""
    unique, inverse = np.unique(ids, return_inverse=True)
    names = [name_of[int(pk)] for pk in unique.tolist()]
    values = tuple(sorted(set(names)))
    position = {v: k for k, v in enumerate(values)}
    code = np.array([position[name] for name in names], dtype=np.int64)
    return Label(code[inverse].reshape(-1), values)


def _in_order_of_appearance(keys: np.ndarray) -> np.ndarray:
    """Codes 0, 1, … given to the keys in the order each first appears."""
    _, first_at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(first_at.size, dtype=np.int64)
    rank[np.argsort(first_at, kind="stable")] = np.arange(first_at.size)
    return rank[inverse.reshape(-1)]


def study_votes(*, study: Study) -> StudyVotes:
    """The study's current comparison votes (every criterion, labelled) as a VoteTable,
    with the attention checks its raters answered. The left system is ``first``.

    The votes come in one query of ids over the vote and assignment tables; names,
    systems, categories and sources come from the study's small tables and are mapped
    with numpy, not per row (1M votes: seconds, where a join per column took minutes)."""
    systems = list(study.systems.order_by("pk").values_list("pk", "name"))
    index = {pk: k for k, (pk, _) in enumerate(systems)}
    system_of = dict(
        Asset.objects.filter(system__study=study).values_list("pk", "system_id").iterator()
    )
    votes = Vote.objects.filter(assignment__study=study, is_current=True)
    comparisons = votes.filter(assignment__kind=AssignmentKind.COMPARISON)
    # Every column an integer (the answer as its Outcome code, in SQL), so the rows
    # flatten into one array without a pass per column in Python.
    outcome = Case(
        *(When(answer=answer, then=Value(int(code))) for answer, code in OUTCOME.items()),
        output_field=IntegerField(),
    )
    query = (
        comparisons.order_by("pk")
        .annotate(outcome=outcome)
        .values_list(
            "outcome",
            "assignment__rater_id",
            "response_ms",
            "assignment__prompt_id",
            "assignment__criterion_id",
            "assignment__left_asset_id",
            "assignment__right_asset_id",
        )
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        records = cursor.fetchall()
    n = len(records)
    flat = np.fromiter(itertools.chain.from_iterable(records), dtype=np.int64, count=7 * n)
    del records
    outcomes, raters, ms, prompts, criteria, left_assets, right_assets = (
        np.ascontiguousarray(column) for column in flat.reshape(n, 7).T
    )
    asset_ids = np.array(sorted(system_of), dtype=np.int64)
    asset_system = np.array([index[system_of[pk]] for pk in asset_ids.tolist()], dtype=np.int64)
    first = asset_system[np.searchsorted(asset_ids, left_assets)]
    second = asset_system[np.searchsorted(asset_ids, right_assets)]
    rater_ids, rater_code = np.unique(raters, return_inverse=True)
    # What several raters judged alike: a prompt under one criterion (and its pair).
    item = _in_order_of_appearance(prompts * (criteria.max(initial=0) + 1) + criteria)
    criterion_key = dict(Criterion.objects.filter(study=study).values_list("pk", "key"))
    category = {
        pk: c or "(none)"
        for pk, c in Prompt.objects.filter(study=study).values_list("pk", "category")
    }
    source_of = dict(Rater.objects.filter(study=study).values_list("pk", "source"))
    sources = _codes(raters, source_of)
    table = make_vote_table(
        systems=tuple(name for _, name in systems),
        first=first,
        second=second,
        outcome=outcomes,
        position_known=True,
        rater=rater_code.reshape(-1).astype(np.int64),
        raters=tuple(f"rater {pk}" for pk in rater_ids.tolist()),
        unit=pair_units(item, first, second, len(systems)),
        response_ms=ms.astype(np.float64),
        labels={
            "criterion": _codes(criteria, criterion_key),
            "category": _codes(prompts, category),
            "source": sources,
            "prompt": _codes(prompts, {int(p): str(p) for p in np.unique(prompts).tolist()}),
            # The media shown, for per-asset measures (values: asset ids).
            "left_asset": _codes(left_assets, {int(a): str(a) for a in asset_ids.tolist()}),
            "right_asset": _codes(right_assets, {int(a): str(a) for a in asset_ids.tolist()}),
        },
    )
    rater_index = {int(pk): k for k, pk in enumerate(rater_ids.tolist())}
    checks = list(
        votes.filter(assignment__kind=AssignmentKind.ATTENTION).values_list(
            "assignment__rater_id",
            "answer",
            "assignment__expected_answer",
            "assignment__left_asset_id",
            "assignment__right_asset_id",
        )
    )
    check_rater = np.array([rater_index.get(r[0], -1) for r in checks], dtype=np.int64)
    # The session's own rule (an identical-pair trap passes with a tie or "both bad").
    check_passed = np.array(
        [
            passes(Assignment(expected_answer=e, left_asset_id=left, right_asset_id=right), a)
            for _, a, e, left, right in checks
        ],
        dtype=bool,
    )
    known = check_rater >= 0
    simulated = np.array(sources.values, dtype=object)[sources.codes] == RaterSource.SIMULATED
    return StudyVotes(
        table,
        tuple(int(pk) for pk in rater_ids.tolist()),
        np.asarray(simulated, dtype=bool).reshape(-1),
        check_rater[known],
        check_passed[known],
    )


@dataclass(frozen=True)
class SystemMetric:
    """One system-level metric of a study: its value per system name, and its bootstrap
    replicates over images where every system has as many (else None)."""

    name: str
    lower_is_better: bool
    values: dict[str, float]
    samples: dict[str, list[float]] | None
    notes: tuple[str, ...]
    n_fake: dict[str, int]
    # The value's interval over images per system, where it has one.
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetMetric:
    name: str
    lower_is_better: bool
    values: dict[int, float]  # asset id -> value


@dataclass(frozen=True)
class StudyMetrics:
    systems: tuple[SystemMetric, ...]
    assets: tuple[AssetMetric, ...]


def metrics_stamp(*, study: Study) -> str:
    """A short fingerprint of the study's metric values: how many, and the latest change
    (two aggregate queries; a page view reads it to tell a stale report)."""
    parts = []
    for rows in (
        MetricValue.objects.filter(study=study),
        AssetMeasure.objects.filter(asset__system__study=study),
    ):
        found = rows.aggregate(n=Count("pk"), last=Max("updated_at"))
        parts.append(f"{found['n']}@{found['last'].isoformat() if found['last'] else '-'}")
    return "|".join(parts)


# Bootstrap replicates over a system's outputs for a per-asset measure's mean.
MEAN_REPLICATES = 200


def _system_mean(name: str, lower: bool, values: dict[str, list[float]]) -> SystemMetric:
    """A per-asset measure as a system-level metric: its mean over each system's
    outputs, with replicates that resample those outputs (seeded: a rebuild gives the
    same report)."""
    rng = np.random.default_rng(0)
    samples = {}
    for system, found in sorted(values.items()):
        x = np.asarray(found, dtype=np.float64)
        draws = rng.integers(0, x.size, size=(MEAN_REPLICATES, x.size))
        samples[system] = [float(v) for v in x[draws].mean(axis=1)]
    return SystemMetric(
        name=f"{name} (mean per system)",
        lower_is_better=lower,
        values={system: float(np.mean(found)) for system, found in values.items()},
        samples=samples,
        notes=(
            "A low-level quality signal averaged over each system's outputs; its interval "
            "resamples the outputs.",
        ),
        n_fake={system: len(found) for system, found in values.items()},
        low={s: float(np.quantile(v, 0.025)) for s, v in samples.items()},
        high={s: float(np.quantile(v, 0.975)) for s, v in samples.items()},
    )


def study_metrics(*, study: Study) -> StudyMetrics:
    """The study's metric values, grouped by metric (and extractor), values by system
    name; per-asset measures by asset id."""
    grouped: dict[tuple[str, bool], list[MetricValue]] = {}
    for value in MetricValue.objects.filter(study=study, value__isnull=False).select_related(
        "system"
    ):
        grouped.setdefault((value.label, value.lower_is_better), []).append(value)
    systems = []
    for (name, lower), rows in grouped.items():
        lengths = {len(r.replicates) for r in rows}
        paired = len(lengths) == 1 and lengths != {0}
        notes = sorted({note for r in rows for note in r.notes})
        systems.append(
            SystemMetric(
                name=name,
                lower_is_better=lower,
                values={r.system.name: float(r.value) for r in rows if r.value is not None},
                samples={r.system.name: list(r.replicates) for r in rows} if paired else None,
                notes=tuple(notes),
                n_fake={r.system.name: r.n_fake for r in rows if r.n_fake is not None},
                low={r.system.name: r.low for r in rows if r.low is not None},
                high={r.system.name: r.high for r in rows if r.high is not None},
            )
        )
    measures: dict[tuple[str, bool], dict[int, float]] = {}
    by_system: dict[tuple[str, bool], dict[str, list[float]]] = {}
    stored = AssetMeasure.objects.filter(asset__system__study=study).values_list(
        "asset_id", "asset__system__name", "asset__kind", "measure", "value", "lower_is_better"
    )
    for asset_id, system, kind, measure, number, lower in stored.order_by("asset_id"):
        measures.setdefault((measure, lower), {})[asset_id] = number
        if kind == AssetKind.OUTPUT:
            by_system.setdefault((measure, lower), {}).setdefault(system, []).append(number)
    systems += [_system_mean(name, lower, found) for (name, lower), found in by_system.items()]
    return StudyMetrics(
        systems=tuple(systems),
        assets=tuple(AssetMetric(n, lower, v) for (n, lower), v in sorted(measures.items())),
    )
