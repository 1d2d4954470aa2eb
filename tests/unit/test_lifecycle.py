import pytest

from studies import lifecycle
from studies.exceptions import InvalidTransition, StudyNotReady
from studies.models import Asset, AssetKind, StudyStatus
from tests.factories import (
    make_asset,
    make_criterion,
    make_prompt,
    make_ready_study,
    make_study,
    make_system,
)

pytestmark = pytest.mark.django_db


def test_ready_study_launches_pauses_resumes_and_closes() -> None:
    study = make_ready_study()
    assert lifecycle.launch_study(study=study).status == StudyStatus.LIVE
    assert lifecycle.pause_study(study=study).status == StudyStatus.PAUSED
    assert lifecycle.launch_study(study=study).status == StudyStatus.LIVE
    assert lifecycle.close_study(study=study).status == StudyStatus.CLOSED
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED


def test_launch_lists_everything_that_is_missing() -> None:
    study = make_study(status="ready")
    system = make_system(study, name="Only one")
    make_prompt(study)
    with pytest.raises(StudyNotReady) as caught:
        lifecycle.launch_study(study=study)
    message = str(caught.value)
    assert "1 system(s); a comparison needs at least 2" in message
    assert "no criteria" in message
    assert "system 'Only one' has no media for 1 prompt(s)" in message
    assert "attention-check media" in message
    study.refresh_from_db()
    assert study.status == StudyStatus.READY
    assert system.pk


def test_launch_needs_media_for_every_system_and_prompt() -> None:
    study = make_ready_study(systems=2, prompts=2)
    late = make_prompt(study, text="added after generation")
    assert lifecycle.launch_problems(study=study) == [
        f"system {s.name!r} has no media for 1 prompt(s)" for s in study.systems.all()
    ]
    for system in study.systems.all():
        asset = make_asset(system, late)
        make_asset(system, late, kind=AssetKind.ATTENTION, source=asset)
    assert lifecycle.launch_problems(study=study) == []


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("draft", lifecycle.launch_study),
        ("live", lifecycle.launch_study),
        ("draft", lifecycle.pause_study),
        ("closed", lifecycle.close_study),
        ("live", lifecycle.begin_generation),
        ("ready", lifecycle.finish_generation),
    ],
)
def test_transitions_from_the_wrong_status_are_refused(status: str, action) -> None:
    study = make_ready_study(status=status)
    with pytest.raises((InvalidTransition, StudyNotReady)):
        action(study=study)
    study.refresh_from_db()
    assert study.status == status


def test_generation_returns_to_draft_when_nothing_was_made() -> None:
    study = make_study()
    make_criterion(study)
    lifecycle.begin_generation(study=study)
    assert lifecycle.finish_generation(study=study).status == StudyStatus.DRAFT
    assert not Asset.objects.exists()


def test_practice_without_material_for_any_criterion_is_a_launch_problem() -> None:
    study = make_ready_study()
    study.practice_comparisons = 2
    study.save()
    study.criteria.update(copy_is_known_worse=False)
    problems = lifecycle.launch_problems(study=study)
    assert any("no criterion has practice material" in p for p in problems), problems
    with pytest.raises(StudyNotReady):
        lifecycle.launch_study(study=study)
    study.criteria.update(copy_is_known_worse=True)
    assert lifecycle.launch_problems(study=study) == []
