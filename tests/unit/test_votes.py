import uuid

import pytest

from studies.assignments import record_load_failure, session_state
from studies.exceptions import (
    AlreadyVoted,
    ClientIdReused,
    CorrectionRefused,
    InvalidAnswer,
    NotYourAssignment,
    StudyNotOpen,
)
from studies.models import AssignmentStatus, Comparison, StudyStatus, Vote
from studies.votes import record_vote
from tests.factories import make_judging_rater, make_live_study, tally

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_live_study(systems=3, prompts=3, attention_check_rate=0, practice_comparisons=0)


def _vote(rater, pair, answer="left", client_id=None, **kwargs):
    return record_vote(
        rater=rater,
        token=pair.token,
        answer=answer,
        response_ms=1200,
        client_id=client_id or uuid.uuid4(),
        **kwargs,
    )


def test_retry_with_the_same_client_id_returns_the_stored_vote(study) -> None:
    rater = make_judging_rater(study)
    pair = session_state(rater=rater).assignments[0]
    client_id = uuid.uuid4()
    first = _vote(rater, pair, client_id=client_id)
    retry = _vote(rater, pair, answer="right", client_id=client_id)
    assert first.created and not retry.created
    assert retry.vote.pk == first.vote.pk and retry.vote.answer == "left"
    assert Vote.objects.count() == 1
    assert tally(Comparison.objects.get(assignments=pair))[0] == 1


def test_a_second_answer_to_the_same_pair_is_refused(study) -> None:
    rater = make_judging_rater(study)
    pair = session_state(rater=rater).assignments[0]
    _vote(rater, pair)
    with pytest.raises(AlreadyVoted, match="Change my previous answer"):
        _vote(rater, pair, answer="right")
    assert Vote.objects.count() == 1


def test_correction_of_the_last_answer_supersedes_and_keeps_the_old_vote(study) -> None:
    rater = make_judging_rater(study)
    first, second = session_state(rater=rater).assignments
    _vote(rater, first)
    old = _vote(rater, second, answer="left").vote
    new = _vote(rater, second, answer="right", correction=True).vote
    old.refresh_from_db()
    assert (old.is_current, new.is_current, new.supersedes_id) == (False, True, old.pk)
    # Still one current vote.
    assert tally(Comparison.objects.get(assignments=second))[0] == 1
    assert Vote.objects.filter(assignment=second, is_current=True).count() == 1
    with pytest.raises(CorrectionRefused, match="Only your last answer"):
        _vote(rater, first, answer="right", correction=True)


def test_correcting_a_pair_never_answered_is_refused(study) -> None:
    rater = make_judging_rater(study)
    pair = session_state(rater=rater).assignments[0]
    with pytest.raises(CorrectionRefused):
        _vote(rater, pair, correction=True)


def test_another_raters_pair_is_not_found(study) -> None:
    owner, intruder = make_judging_rater(study), make_judging_rater(study)
    pair = session_state(rater=owner).assignments[0]
    with pytest.raises(NotYourAssignment):
        _vote(intruder, pair)
    assert not Vote.objects.exists()


def test_a_client_id_of_another_rater_is_refused(study) -> None:
    one, other = make_judging_rater(study), make_judging_rater(study)
    client_id = uuid.uuid4()
    _vote(one, session_state(rater=one).assignments[0], client_id=client_id)
    with pytest.raises(ClientIdReused):
        _vote(other, session_state(rater=other).assignments[0], client_id=client_id)


def test_a_client_id_reused_on_another_pair_is_refused_and_stores_nothing(study) -> None:
    rater = make_judging_rater(study)
    first, second = session_state(rater=rater).assignments[:2]
    client_id = uuid.uuid4()
    _vote(rater, first, client_id=client_id)
    with pytest.raises(ClientIdReused, match="not stored"):
        _vote(rater, second, client_id=client_id)
    assert Vote.objects.count() == 1
    assert not Vote.objects.filter(assignment_id=second.pk).exists()
    assert _vote(rater, first, client_id=client_id).created is False  # a true retry


def test_answers_the_study_does_not_offer_are_refused(study) -> None:
    study.allowed_answers = ["left", "right"]
    study.save()
    rater = make_judging_rater(study)
    pair = session_state(rater=rater).assignments[0]
    with pytest.raises(InvalidAnswer, match="'tie' is not an answer"):
        _vote(rater, pair, answer="tie")


def test_closed_study_takes_no_answers(study) -> None:
    rater = make_judging_rater(study)
    pair = session_state(rater=rater).assignments[0]
    study.status = StudyStatus.CLOSED
    study.save()
    with pytest.raises(StudyNotOpen):
        _vote(rater, pair)


def test_load_failure_replaces_the_pair_and_returns_it_to_the_pool(study) -> None:
    rater = make_judging_rater(study)
    broken = session_state(rater=rater).assignments[0]
    record_load_failure(rater=rater, token=broken.token, detail="left image: decode failed")
    broken.refresh_from_db()
    assert broken.status == AssignmentStatus.REPLACED and "decode failed" in broken.load_error
    comparison = Comparison.objects.get(assignments=broken)
    assert tally(comparison)[1] == 0 and comparison.shown_a_left + comparison.shown_b_left == 0
    state = session_state(rater=rater)
    assert broken.pk not in [a.pk for a in state.assignments] and len(state.assignments) == 2
    with pytest.raises(AlreadyVoted, match="replaced"):
        _vote(rater, broken)
