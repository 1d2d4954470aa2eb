"""A study's leaderboard for the page and the API: the core leaderboard plus who was
left out and why, agreement and rater quality."""

import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np

from analysis.core.leaderboard import (
    LeaderboardOptions,
    json_ready,
    leaderboard,
    rater_agreement,
)
from analysis.core.quality import QualityThresholds, exclude_flagged, rater_quality
from analysis.loaders import study_votes
from studies.models import Criterion, Study

# Random rater splits for split-half reliability (each costs two small fits).
SPLITS = 20


class NoVotes(ValueError):
    """Nothing to rank yet."""


@dataclass(frozen=True)
class Choices:
    criterion: Criterion | None
    include_simulated: bool = True
    exclude_flagged: bool = False
    replicates: int = 1000


def _data_hash(table: Any) -> str:
    digest = hashlib.sha256()
    for column in (table.first, table.second, table.outcome, table.rater):
        digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()[:16]


def study_leaderboard(*, study: Study, choices: Choices) -> dict[str, Any]:
    """Everything the leaderboard shows for one criterion of a study."""
    loaded = study_votes(study=study)
    table = loaded.table
    if not choices.include_simulated:
        table = table.select(~loaded.simulated)
    # Raters are judged on all their votes in the study, not one criterion's share.
    quality = rater_quality(
        table,
        check_rater=loaded.check_rater,
        check_passed=loaded.check_passed,
        thresholds=QualityThresholds(max_failed_checks=study.max_failed_attention_checks),
    )
    flagged = [q for q in quality if q.flags]
    in_criterion = np.ones(loaded.table.n_votes, dtype=bool)
    if choices.criterion is not None:
        label = loaded.table.labels["criterion"]
        code = (
            label.values.index(choices.criterion.key)
            if choices.criterion.key in label.values
            else -1
        )
        in_criterion = label.codes == code
    simulated_votes = int((loaded.simulated & in_criterion).sum())
    keep = in_criterion if choices.include_simulated else in_criterion & ~loaded.simulated
    table = loaded.table.select(keep)
    excluded = {"raters": 0, "votes": 0}
    if choices.exclude_flagged:
        cut = exclude_flagged(table, quality)
        table = cut.votes
        excluded = {"raters": cut.excluded_raters, "votes": cut.excluded_votes}
    if table.n_votes == 0:
        raise NoVotes(
            "No votes to rank yet" + (" (after the exclusions)" if excluded["votes"] else "") + "."
        )
    board = leaderboard(
        table, LeaderboardOptions(replicates=choices.replicates, breakdowns=("category", "source"))
    )
    board.update(
        study=study.slug,
        criterion=choices.criterion.key if choices.criterion else None,
        question=choices.criterion.question if choices.criterion else None,
        simulated={"votes": simulated_votes, "included": choices.include_simulated},
        excluded=excluded,
        agreement=rater_agreement(table, splits=SPLITS),
        quality={
            "raters": len(quality),
            "flagged": [{**q.as_dict(), "rater": loaded.rater_ids[q.rater]} for q in flagged],
        },
        stamp={"data_hash": _data_hash(table), "software": f"verdict {version('verdict')}"},
    )
    return json_ready(board)
