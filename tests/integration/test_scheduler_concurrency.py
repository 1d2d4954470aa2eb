"""Fifty raters at once on PostgreSQL: a balanced spread, no deadlock, no duplicate, and
counters that agree with the rows."""

import threading
import uuid
from collections import Counter

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Q

from studies.assignments import retrying_deadlocks, session_state
from studies.models import Assignment, Comparison
from studies.votes import record_vote
from tests.factories import make_judging_rater, make_live_study

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RATERS = 50


def _in_threads(work, raters) -> list[BaseException]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(raters))
    errors: list[BaseException] = []

    def run(rater) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=30)
            work(rater)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a rater is stuck (deadlock?)"
    return errors


def _assert_counters_match_rows(study) -> None:  # type: ignore[no-untyped-def]
    rows = (
        Assignment.objects.filter(study=study, kind="comparison")
        .values("comparison_id")
        .annotate(
            served=Count("pk", filter=Q(status="served")),
            answered=Count("pk", filter=Q(status="answered")),
        )
    )
    by_comparison = {row["comparison_id"]: row for row in rows}
    for comparison in Comparison.objects.filter(study=study):
        row = by_comparison.get(comparison.pk, {"served": 0, "answered": 0})
        assert comparison.shown_a_left + comparison.shown_b_left == row["served"] + row["answered"]
        assert abs(comparison.shown_a_left - comparison.shown_b_left) <= 1


def test_fifty_raters_at_once_are_spread_evenly_without_duplicates() -> None:
    study = make_live_study(
        systems=4, prompts=5, criteria=1, comparisons_per_session=20,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip  # 30 comparisons
    raters = [make_judging_rater(study) for _ in range(RATERS)]

    errors = _in_threads(lambda rater: session_state(rater=rater), raters)
    assert not errors, errors

    served = Assignment.objects.filter(study=study, kind="comparison")
    assert served.count() == 2 * RATERS
    pairs = Counter(served.values_list("rater_id", "comparison_id"))
    assert max(pairs.values()) == 1
    load = [c.shown_a_left + c.shown_b_left for c in Comparison.objects.filter(study=study)]
    assert sum(load) == 2 * RATERS
    print(f"load per comparison after {RATERS} concurrent raters: {sorted(load)}")
    assert max(load) - min(load) <= 1, sorted(load)
    _assert_counters_match_rows(study)

    def vote_then_ask(rater) -> None:  # type: ignore[no-untyped-def]
        pair = session_state(rater=rater).assignments[0]
        record_vote(
            rater=rater, token=pair.token, answer="right", response_ms=700, client_id=uuid.uuid4()
        )
        session_state(rater=rater)

    errors = _in_threads(vote_then_ask, raters)
    assert not errors, errors
    answered = Assignment.objects.filter(study=study, kind="comparison", status="answered")
    assert answered.count() == RATERS
    _assert_counters_match_rows(study)


def test_a_transaction_aborted_to_break_a_deadlock_runs_again() -> None:
    """Two transactions lock two comparisons in opposite orders: PostgreSQL aborts one
    to break the deadlock, and ``retrying_deadlocks`` runs it again, so both end done.
    Anything else raised is not retried."""
    study = make_live_study(systems=2, prompts=2, attention_check_rate=0)
    first, second = Comparison.objects.filter(study=study).order_by("pk")[:2]
    both_hold_one = threading.Barrier(2)
    attempts: Counter[str] = Counter()

    def lock_in_order(name: str, order: list[Comparison]) -> None:
        def once() -> None:
            attempts[name] += 1
            with transaction.atomic():
                Comparison.objects.select_for_update().get(pk=order[0].pk)
                if attempts[name] == 1:
                    both_hold_one.wait(timeout=30)
                Comparison.objects.select_for_update().get(pk=order[1].pk)

        retrying_deadlocks(once)

    errors = _in_threads(
        lambda job: lock_in_order(*job), [("ab", [first, second]), ("ba", [second, first])]
    )
    assert not errors, errors
    assert sorted(attempts.values()) == [1, 2]  # one was aborted once, then done

    def fails() -> None:
        attempts["other"] += 1
        raise OperationalError("not a deadlock")

    with pytest.raises(OperationalError):
        retrying_deadlocks(fails)
    assert attempts["other"] == 1
