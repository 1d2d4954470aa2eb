import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from studies.models import Asset, AssetKind, Study, Vote
from tests.factories import (
    make_asset,
    make_assignment,
    make_rater,
    make_ready_study,
    make_study,
    make_vote,
)

pytestmark = pytest.mark.django_db


def _violates(constraint: str):
    return pytest.raises(IntegrityError, match=constraint)


def test_one_output_asset_per_system_prompt_seed() -> None:
    study = make_ready_study(systems=2, prompts=1)
    asset = Asset.objects.filter(system__study=study, kind=AssetKind.OUTPUT).first()
    assert asset is not None
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_asset(asset.system, asset.prompt, seed=asset.seed)
    make_asset(asset.system, asset.prompt, seed=asset.seed + 1)  # another seed is fine


def test_attention_copy_needs_a_source_and_is_unique_per_source() -> None:
    study = make_ready_study(systems=2, prompts=1)
    output = Asset.objects.filter(system__study=study, kind=AssetKind.OUTPUT).first()
    assert output is not None
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_asset(output.system, output.prompt, kind=AssetKind.ATTENTION, source=output)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_asset(output.system, output.prompt, seed=5, kind=AssetKind.ATTENTION)


def test_one_current_vote_per_assignment_and_unique_client_id() -> None:
    study = make_ready_study()
    assignment = make_assignment(make_rater(study))
    first = make_vote(assignment)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_vote(assignment)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_vote(make_assignment(make_rater(study)), client_id=first.client_id)
    # A correction supersedes: the old vote stays, no longer current.
    Vote.objects.filter(pk=first.pk).update(is_current=False)
    correction = make_vote(assignment, answer="right", supersedes=first, client_id=uuid.uuid4())
    assert list(assignment.votes.values_list("is_current", flat=True).order_by("pk")) == [
        False,
        True,
    ]
    assert correction.supersedes == first


def test_study_rejects_out_of_range_design_in_the_database() -> None:
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_study(attention_check_rate=0.9)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_study(seeds_per_prompt=0)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["left"], "must both be offered"),
        (["left", "right", "maybe"], "Unknown answers"),
        (["left", "right", "left"], "listed once"),
        ("left,right", "Give a list"),
    ],
)
def test_allowed_answers_are_validated(answers: object, message: str) -> None:
    study = Study(name="x", slug="x", allowed_answers=answers)
    with pytest.raises(ValidationError, match=message):
        study.full_clean()


def test_progress_counts_media_and_votes_against_targets() -> None:
    study = make_ready_study(systems=3, prompts=2, criteria=2, votes_per_comparison=4)
    rater = make_rater(study)
    make_vote(make_assignment(rater))
    annotated = Study.objects.with_progress().get(pk=study.pk)
    counts = {
        k: getattr(annotated, k) for k in ("n_assets", "asset_target", "n_votes", "vote_target")
    }
    # Votes: 2 prompts x 3 pairs x 2 criteria x 4 votes per comparison.
    assert counts == {"n_assets": 6, "asset_target": 6, "n_votes": 1, "vote_target": 48}
