"""A vote at once (studies.assignments.act_at_once) on PostgreSQL: read without the rater's
lock, stored by one statement that stands only on the rater row it was decided on.
Another request that changes the session in between makes it store nothing, and the
request then runs under the lock; raters voting from two tabs at once store every
answer once."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q
from django.test import Client

from studies import assignments, votes
from studies.assignments import session_state
from studies.models import Assignment, AssignmentStatus, Comparison, Rater, Vote
from tests.factories import make_judging_rater, make_live_study, rater_api, start_rater

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _study():  # type: ignore[no-untyped-def]
    return make_live_study(
        systems=4, prompts=6, criteria=1, comparisons_per_session=12,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip


def _loads(study) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return sorted(
        Comparison.objects.filter(study=study).values_list("pk", "shown_a_left", "shown_b_left")
    )


def _in_thread(work: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("when", ["before the statement", "while the statement runs"])
def test_a_vote_at_once_stores_nothing_when_another_request_changed_the_session(
    when: str,
) -> None:
    study = _study()
    rater = make_judging_rater(study)
    session_state(rater=rater)
    pair = Assignment.objects.filter(rater=rater, status=AssignmentStatus.SERVED).order_by("pk")[0]
    loads, pairs = _loads(study), Assignment.objects.count()
    locked, release = threading.Event(), threading.Event()

    def other_tab() -> None:
        # Another request of this rater: it takes the lock (serving nothing new) and
        # commits, after this vote read the session.
        with transaction.atomic():
            assignments.open_desk(slug=study.slug, session_token=rater.session_token)
            locked.set()
            release.wait(10)

    def act(desk: assignments.Desk) -> votes.VoteResult:
        thread = _in_thread(other_tab)
        locked.wait(10)
        if when == "before the statement":
            release.set()
            thread.join(10)
        else:  # the statement waits for the other request's lock, then sees its write
            threading.Timer(0.3, release.set).start()
        try:
            return votes.store(
                desk, answers=[(pair.token, "left")], response_ms=900, client_id=uuid.uuid4()
            )
        finally:
            thread.join(10)

    done = assignments.act_at_once(
        slug=study.slug, session_token=rater.session_token, act=act, tokens=[pair.token]
    )
    assert done is None
    assert not Vote.objects.exists()
    assert Assignment.objects.get(pk=pair.pk).status == AssignmentStatus.SERVED
    assert Assignment.objects.count() == pairs and _loads(study) == loads

    # The same vote read afresh stands, and serves the next pair in its statement.
    done = assignments.act_at_once(
        slug=study.slug,
        session_token=rater.session_token,
        act=lambda desk: votes.store(
            desk, answers=[(pair.token, "left")], response_ms=900, client_id=uuid.uuid4()
        ),
        tokens=[pair.token],
    )
    assert done is not None and not done[2].short
    assert Vote.objects.get().assignment_id == pair.pk
    assert Assignment.objects.filter(rater=rater, status=AssignmentStatus.SERVED).count() == 2


def _post(browser: Client, study, pair: str, barrier, answers: list, client_id: str) -> None:  # type: ignore[no-untyped-def]
    """Answer ``pair`` "left" from one tab, when the other tab does too."""
    barrier.wait(10)
    body = {"assignment": pair, "answer": "left", "response_ms": 900, "client_id": client_id}
    response = rater_api(browser, study, "votes", body)
    answers.append((client_id, response.status_code, response.json()))


def test_raters_answering_from_two_tabs_at_once_store_each_answer_once() -> None:
    study = make_live_study(
        systems=4, prompts=8, criteria=1, comparisons_per_session=10,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip
    raters = 8
    tabs: list[tuple[Client, Client]] = []
    for _ in range(raters):
        first = Client()
        start_rater(first, study, {})
        second = Client()
        second.cookies = first.cookies  # the same browser: two tabs, one session
        tabs.append((first, second))
    acknowledged: list[str] = []
    unexpected: list[str] = []
    lock = threading.Lock()

    def judge(first: Client, second: Client) -> None:
        session = rater_api(first, study, "session", {}).json()
        for turn in range(8):
            if not session.get("comparisons"):
                return
            pair = session["comparisons"][0]["id"]
            # Odd turns: a retry of one answer (one client id); even turns: a double
            # click that sent two answers to one pair (two client ids).
            ids = [str(uuid.uuid4())] * 2 if turn % 2 else [str(uuid.uuid4()), str(uuid.uuid4())]
            answers: list[tuple[str, int, dict]] = []
            barrier = threading.Barrier(2)
            other = _in_thread(partial(_post, second, study, pair, barrier, answers, ids[1]))
            _post(first, study, pair, barrier, answers, ids[0])
            other.join(30)
            with lock:
                for client_id, status, body in answers:
                    if status in (200, 201):
                        acknowledged.append(client_id)
                    elif status != 409:
                        unexpected.append(f"{status} {body}")
            stored = [body for _id, status, body in answers if status in (200, 201)]
            if not stored:
                with lock:
                    unexpected.append(f"no answer stored for {pair}: {answers}")
                return
            session = stored[0]["session"]

    threads = [_in_thread(partial(judge, *pair)) for pair in tabs]
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert not unexpected, unexpected

    stored = Counter(Vote.objects.values_list("client_id", flat=True))
    assert set(map(uuid.UUID, acknowledged)) == set(stored)  # acknowledged = stored
    assert max(stored.values()) == 1
    per_pair = Counter(Vote.objects.filter(is_current=True).values_list("assignment_id", flat=True))
    assert max(per_pair.values()) == 1  # one answer a pair
    assert len(per_pair) == raters * 8
    for rater in Rater.objects.filter(study=study):
        live = rater.assignments.filter(status=AssignmentStatus.SERVED).count()
        assert live <= assignments.OPEN_SCREENS, (rater.pk, live)
        answered = rater.assignments.filter(status=AssignmentStatus.ANSWERED)
        assert answered.count() == Vote.objects.filter(assignment__rater=rater).count()
    # Every comparison's counters agree with its pairs, sides balanced within one.
    rows = (
        Assignment.objects.filter(study=study)
        .values("comparison_id")
        .annotate(shown=Count("pk", filter=Q(status__in=["served", "answered"])))
    )
    shown = {row["comparison_id"]: row["shown"] for row in rows}
    for comparison in Comparison.objects.filter(study=study):
        assert comparison.shown_a_left + comparison.shown_b_left == shown.get(comparison.pk, 0)
        assert abs(comparison.shown_a_left - comparison.shown_b_left) <= 1
