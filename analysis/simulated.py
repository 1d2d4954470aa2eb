"""Simulated raters in a live study: the simulator's answers cast through the real
scheduler and vote services, so that a new study shows a populated leaderboard.

Simulated raters are marked (source "simulated") wherever raters show, and the
leaderboard can leave them out.
"""

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from django.utils import timezone

from analysis.core.simulate import davidson_outcome
from analysis.core.types import Outcome
from studies import assignments, raters, votes
from studies.models import Answer, Asset, Assignment, AssignmentKind, Rater, RaterSource, Study


@dataclass(frozen=True)
class SimulatedRun:
    raters: int
    votes: int


def _answer(
    assignment: Assignment,
    strengths: Mapping[int, float],
    *,
    careless: bool,
    rng: np.random.Generator,
    offered: list[str],
) -> str:
    if assignment.kind == AssignmentKind.JUDGMENT:
        # Real or generated: the image's strength is how real it looks (logit of "real").
        if careless:
            return Answer.REAL if rng.random() < 0.5 else Answer.GENERATED
        p_real = 1 / (1 + math.exp(-strengths.get(assignment.left_asset_id, 0.0)))
        return Answer.REAL if rng.random() < p_real else Answer.GENERATED
    if assignment.expected_answer in (Answer.REAL, Answer.GENERATED):  # practice, check
        correct = rng.random() < (0.5 if careless else 0.98)
        other = Answer.REAL if assignment.expected_answer == Answer.GENERATED else Answer.GENERATED
        return assignment.expected_answer if correct else other
    if assignment.expected_answer:  # practice pair or attention check
        correct = rng.random() < (0.5 if careless else 0.98)
        wrong = Answer.RIGHT if assignment.expected_answer == Answer.LEFT else Answer.LEFT
        return assignment.expected_answer if correct else wrong
    if careless:
        return Answer.LEFT if rng.random() < 0.5 else Answer.RIGHT
    left = strengths.get(assignment.left_asset_id, 0.0)
    right = strengths.get(assignment.right_asset_id, 0.0)
    tie = 0.35 if Answer.TIE in offered else 0.0
    outcome = davidson_outcome(np.array([left - right]), tie, np.array([rng.random()]))[0]
    if outcome == Outcome.FIRST:
        return Answer.LEFT
    if outcome == Outcome.SECOND:
        return Answer.RIGHT
    # A draw between two weak systems is "both bad" where the study offers it.
    both_bad = Answer.BOTH_BAD in offered and max(left, right) < -0.5
    return Answer.BOTH_BAD if both_bad else Answer.TIE


def add_simulated_votes(
    *,
    study: Study,
    strengths: Mapping[str, float],
    n_raters: int,
    careless_share: float = 0.1,
    noise: float = 0.2,
    item_sd: float = 1.5,
    seed: int | None = None,
) -> SimulatedRun:
    """Run ``n_raters`` simulated sessions to the end on a live study.

    ``strengths`` maps system names to log-strengths (unknown names count as 0); in a
    real-or-generated study, to how real their images look (the logit of answering
    "real": 0 is a coin, the real image set high, an easily spotted system low). Each
    output also has its own quality, drawn once with ``item_sd`` and shared by every
    rater: one system's image for a prompt is plainly better than another's for everyone,
    as with real media, which is what makes raters agree (Krippendorff's α 0.14 and 0.19
    on the demo's two questions, −0.12 and −0.18 before; without it every vote is an
    independent coin weighted by the systems). Each rater shifts the systems by their own
    ``noise``; a ``careless_share`` of raters answer at random and fail checks half the
    time, which the quality flags should catch.
    """
    rng = np.random.default_rng(seed)
    system_strength = {
        pk: strengths.get(name, 0.0) for pk, name in study.systems.values_list("pk", "name")
    }
    # Per output: its system's strength and its own quality, the same for every rater.
    outputs = Asset.objects.filter(system__study=study).order_by("pk")
    by_id = {
        pk: system_strength[system] + rng.normal(0, item_sd)
        for pk, system in outputs.values_list("pk", "system_id")
    }
    by_system = {pk: system for pk, system in outputs.values_list("pk", "system_id")}
    offered = list(study.allowed_answers)
    cast = 0
    for _ in range(n_raters):
        now = timezone.now()
        rater = Rater.objects.create(
            study=study, source=RaterSource.SIMULATED, consented_at=now, instructions_done_at=now
        )
        careless = rng.random() < careless_share
        shift = {pk: rng.normal(0, noise) for pk in system_strength}
        own = {pk: value + shift[by_system[pk]] for pk, value in by_id.items()}
        while True:
            state = assignments.session_state(rater=rater)
            if not state.screens:
                break
            screen = state.screens[0]
            median = 450 if careless else 2400
            votes.record_vote(
                rater=rater,
                answers=[
                    (pair.token, _answer(pair, own, careless=careless, rng=rng, offered=offered))
                    for pair in screen
                ],
                response_ms=int(rng.lognormal(math.log(median), 0.35)),
                client_id=uuid.uuid4(),
            )
            cast += 1
            rater.refresh_from_db()
        if not rater.outcome:
            raters.complete_session(rater=rater, questionnaire={"device": "simulated"})
    return SimulatedRun(raters=n_raters, votes=cast)
