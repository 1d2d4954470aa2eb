"""The rater path's hand-written SQL against the ORM forms it stands in for, on the same
data: whichever database the suite runs on (SQLite and PostgreSQL passes both run it)."""

import random
import uuid

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from django.utils import timezone

from studies import assignments, content, desk_sql, scheduler, votes
from studies.assignments import session_state
from studies.models import (
    Asset,
    Assignment,
    AssignmentStatus,
    Comparison,
    Prompt,
    Rater,
    Study,
    System,
    Vote,
)
from tests.factories import (
    answer_pairs,
    make_asset,
    make_judging_rater,
    make_live_study,
    make_vote,
    rater_api,
    start_rater,
)

pytestmark = pytest.mark.django_db


def _values(instance, skip=frozenset()):  # type: ignore[no-untyped-def]
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if f.name not in skip
    }


def _run_pick(**kwargs):  # type: ignore[no-untyped-def]
    sql, params = desk_sql.pick(**kwargs)
    found = desk_sql.execute(sql, params, fetch="all")
    return [(row[0], row[1], row[2], row[3], bool(row[4])) for row in found]


def _orm_pick(study, **kwargs):  # type: ignore[no-untyped-def]
    rows = scheduler.pick(study=study, **kwargs)
    keys = ("pk", "prompt_id", "system_a_id", "system_b_id", "a_left")
    return [tuple(row[key] for key in keys) for row in rows]


@pytest.mark.parametrize(("one_screen", "adaptive"), [(False, False), (True, False), (False, True)])
def test_pick_agrees_with_the_scheduler_on_every_rule(one_screen: bool, adaptive: bool) -> None:
    study = make_live_study(
        systems=4, prompts=5, criteria=2, criteria_on_one_screen=one_screen,
        attention_check_rate=0, practice_comparisons=0, comparisons_per_session=6,
        pair_selection="adaptive" if adaptive else "balanced",
    )  # fmt: skip
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=3)  # pairs this rater had are left out
    fresh = make_judging_rater(study)
    criterion_id = study.criteria.order_by("order")[0].pk if one_screen else None
    prompts = list(study.prompts.values_list("pk", flat=True))
    comparisons = list(Comparison.objects.filter(study=study))
    seen = set()
    for seed in range(6):
        rng = random.Random(seed)
        # Loads with ties, counterbalance states both ways (the lowest load unbalanced
        # in half the rounds); distinct shuffles, so the order is total and both forms
        # must name the same row.
        shuffles = rng.sample(range(10_000), len(comparisons))
        for comparison, shuffle in zip(comparisons, shuffles, strict=True):
            comparison.shown_a_left = rng.randrange(3)
            comparison.shown_b_left = rng.randrange(3)
            if seed % 2 and comparison.shown_a_left == comparison.shown_b_left:
                comparison.shown_a_left += 1
            comparison.shuffle = shuffle
            comparison.available = rng.random() > 0.1
            # Adaptive: strides that reorder the loads (ties of the weighted load too).
            comparison.stride = rng.choice([0.5, 1.0, 1.5, 3.0]) if adaptive else 1.0
        Comparison.objects.bulk_update(
            comparisons, ["shown_a_left", "shown_b_left", "shuffle", "available", "stride"]
        )
        by_pk = {c.pk: c for c in comparisons}
        for who in (rater, fresh):
            for avoid in ((), prompts[:1], prompts[1:4], prompts):
                for lowest_only in (True, False):
                    rules = dict(
                        rater_id=who.pk, criterion_id=criterion_id, avoid_prompts=avoid,
                        lowest_only=lowest_only,
                    )  # fmt: skip
                    expected = _orm_pick(study, **rules)
                    found = _run_pick(study_id=study.pk, adaptive=adaptive, **rules)
                    assert found == expected, (seed, rules)
                    for pk, *_, a_left in expected:
                        picked = by_pk[pk]
                        balanced = picked.shown_a_left == picked.shown_b_left
                        seen.add((balanced, a_left))
    # Every branch of the counterbalance rule was compared.
    assert seen == {(True, True), (True, False), (False, True), (False, False)}


def test_session_rows_are_the_orms_rows_with_the_current_vote() -> None:
    study = make_live_study(
        systems=3, prompts=3, attention_check_rate=0.2, practice_comparisons=1,
        comparisons_per_session=6,
    )  # fmt: skip
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=4)
    changed = rater.assignments.filter(status=AssignmentStatus.ANSWERED).order_by("pk")[3]
    old = Vote.objects.get(assignment=changed, is_current=True)
    Vote.objects.filter(pk=old.pk).update(is_current=False)
    new = make_vote(changed, answer="tie", supersedes=old)

    rows = desk_sql.session_rows(rater_id=rater.pk)
    expected = list(Assignment.objects.filter(rater=rater).order_by("pk"))
    assert len(rows) == len(expected) > 4
    for row, orm in zip(rows, expected, strict=True):
        assert _values(row, desk_sql.ROW_SKIP) == _values(orm, desk_sql.ROW_SKIP)
        current = Vote.objects.filter(assignment=orm, is_current=True).first()
        found = (row.current_answer, row.current_vote)  # type: ignore[attr-defined]
        assert found == ((current.answer, current.pk) if current else (None, None))
        assert row.served_at == orm.served_at  # a skipped column loads when read
    changed_row = next(r for r in rows if r.pk == changed.pk)
    assert changed_row.current_vote == new.pk  # type: ignore[attr-defined]


def test_rater_with_study_matches_the_orm_and_finds_the_client_ids_vote() -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(
        study, questionnaire={"device": "phone", "note": "ünïcode"}, user_agent="UA"
    )
    answer_pairs(rater, limit=1)
    vote = Vote.objects.filter(assignment__rater=rater).get()
    for client_id, expected in ((vote.client_id, vote.assignment_id), (uuid.uuid4(), None)):
        for lock in (True, False):
            read = desk_sql.rater_with_study(
                slug=study.slug, session_token=rater.session_token, client_id=client_id, lock=lock
            )
            assert read is not None and read.client_vote == expected
            assert _values(read.rater) == _values(Rater.objects.get(pk=rater.pk))
            assert _values(read.rater.study) == _values(Study.objects.get(pk=study.pk))
            assert read.version == _version(rater)
    other = make_live_study()
    assert (
        desk_sql.rater_with_study(
            slug=other.slug, session_token=rater.session_token, client_id=vote.client_id, lock=False
        )
        is None
    )


def _version(rater: Rater) -> str | None:
    """The rater row's version as the vote path reads it: PostgreSQL's xmin."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text FROM {Rater._meta.db_table} WHERE id = %s", [rater.pk])
        return str(cursor.fetchone()[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_taking_the_raters_lock_writes_its_row_so_a_read_without_it_sees_the_change() -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    before = _version(rater)

    def read(lock: bool) -> desk_sql.RaterRead:
        found = desk_sql.rater_with_study(
            slug=study.slug, session_token=rater.session_token, client_id=uuid.uuid4(), lock=lock
        )
        assert found is not None
        return found

    assert read(lock=False).version == before  # reading alone leaves the row as it was
    with transaction.atomic():
        locked = read(lock=True)
    # A lock taken and released, nothing else written: the row has a new version all
    # the same, the one the locked read saw.
    assert locked.version == _version(rater) != before


def test_insert_and_move_status_write_what_the_orm_reads_back() -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=1)
    template = Assignment.objects.filter(rater=rater).order_by("pk")[0]
    made = [
        Assignment(
            study=study, rater=rater, kind="practice", comparison=None, prompt=template.prompt,
            criterion=template.criterion, left_asset=template.right_asset,
            right_asset=template.left_asset, screen="", expected_answer="",
            status=AssignmentStatus.SERVED,
        )
        for _ in range(3)
    ]  # fmt: skip
    desk_sql.insert(made)
    assert all(row.pk for row in made) and len({row.pk for row in made}) == 3
    for row in made:
        stored = Assignment.objects.get(pk=row.pk)
        assert _values(stored) == _values(row)
        assert stored.served_at is not None  # the model's default, applied on insert
    pks = [row.pk for row in made[:2]]
    moved = desk_sql.move_status(
        pks, source=AssignmentStatus.SERVED, target=AssignmentStatus.EXPIRED
    )
    assert moved == 2
    # Only rows still in the source status move.
    assert (
        desk_sql.move_status(
            [made[0].pk], source=AssignmentStatus.SERVED, target=AssignmentStatus.ANSWERED
        )
        == 0
    )
    statuses = dict(
        Assignment.objects.filter(pk__in=[r.pk for r in made]).values_list("pk", "status")
    )
    assert statuses == {
        made[0].pk: AssignmentStatus.EXPIRED,
        made[1].pk: AssignmentStatus.EXPIRED,
        made[2].pk: AssignmentStatus.SERVED,
    }


def test_insert_moving_stores_the_votes_and_moves_only_pairs_still_in_the_source() -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=1)
    session_state(rater=rater)  # both screens on show again
    served = list(rater.assignments.filter(status=AssignmentStatus.SERVED).order_by("pk"))
    assert len(served) == 2
    Assignment.objects.filter(pk=served[1].pk).update(status=AssignmentStatus.EXPIRED)
    made = [
        Vote(assignment=row, answer="left", response_ms=900 + i, client_id=uuid.uuid4())
        for i, row in enumerate(served)
    ]
    done = desk_sql.insert_moving(
        made,
        [row.pk for row in served],
        source=AssignmentStatus.SERVED,
        target=AssignmentStatus.ANSWERED,
        rater_id=rater.pk,
        tally={"screens": {"comparison": 7}, "prompts": {}, "last": None},
        live_from=served[0].pk,
        version=_version(rater),
    )
    assert done.moved == 1 and done.stored == made and done.taken is done.placed is None
    rater.refresh_from_db()
    assert rater.tally == {"screens": {"comparison": 7}, "prompts": {}, "last": None}
    for vote in made:  # keys in the order given, and the rows what the ORM reads back
        assert _values(Vote.objects.get(pk=vote.pk)) == _values(vote)
    statuses = [Assignment.objects.get(pk=row.pk).status for row in served]
    assert statuses == [AssignmentStatus.ANSWERED, AssignmentStatus.EXPIRED]


@pytest.mark.postgres
def test_a_votes_statement_on_a_changed_rater_row_stores_nothing() -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    session_state(rater=rater)
    desk = assignments.open_desk(slug=study.slug, session_token=rater.session_token, lock=False)
    screen = desk.open_screens()[0]
    loads = sorted(Comparison.objects.values_list("pk", "shown_a_left", "shown_b_left"))
    pairs = Assignment.objects.count()

    def vote(version: str | None) -> desk_sql.Moved:
        avoid = assignments._variety(desk)[0]
        place = Assignment(study=study, rater=rater, kind="comparison", expires_at=timezone.now())
        take = assignments._take_of(desk, avoid=avoid, lowest_only=True, wait=False, place=place)
        made = [Vote(assignment=screen[0], answer="left", response_ms=900, client_id=uuid.uuid4())]
        with transaction.atomic():
            return desk_sql.insert_moving(
                made,
                [screen[0].pk],
                source=AssignmentStatus.SERVED,
                target=AssignmentStatus.ANSWERED,
                rater_id=rater.pk,
                tally={"screens": {"comparison": 9}, "prompts": {}, "last": None},
                live_from=screen[0].pk,
                version=version,
                take=take,
            )

    # Another request wrote the row after this vote read it (a lock taken is a write);
    # in a savepoint, which writes with a transaction id of its own, as another would.
    with transaction.atomic():
        Rater.objects.filter(pk=rater.pk).update(live_from=F("live_from"))
    with pytest.raises(desk_sql.SessionChanged):
        vote(desk.version)
    assert not Vote.objects.filter(assignment=screen[0]).exists()
    assert Assignment.objects.get(pk=screen[0].pk).status == AssignmentStatus.SERVED
    assert Assignment.objects.count() == pairs  # no pair placed
    assert sorted(Comparison.objects.values_list("pk", "shown_a_left", "shown_b_left")) == loads
    assert Rater.objects.get(pk=rater.pk).tally != {
        "screens": {"comparison": 9},
        "prompts": {},
        "last": None,
    }
    # Decided on the row as it is now, the same statement stores it all.
    done = vote(_version(rater))
    assert done.moved == 1 and done.placed is not None and len(done.taken or []) == 1
    assert Vote.objects.filter(assignment=screen[0]).count() == 1
    assert Assignment.objects.count() == pairs + 1


@pytest.mark.parametrize("one_screen", [False, True])
def test_session_reads_the_live_pairs_as_the_rows_say(one_screen: bool) -> None:
    """desk_sql.session against the whole session read row by row and filtered with
    ``is_live`` (on SQLite that is how it is computed)."""
    study = make_live_study(
        systems=3, prompts=3, criteria=2 if one_screen else 1, criteria_on_one_screen=one_screen,
        attention_check_rate=0.25, practice_comparisons=2, comparisons_per_session=9,
    )  # fmt: skip
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=7)

    def check_below_bound() -> bool:
        rater.refresh_from_db()
        return Assignment.objects.filter(
            rater=rater, kind="attention", pk__lt=rater.live_from
        ).exists()

    # Answered on until an attention check lies below the rater's bound (of the 3 checks
    # among 12 pairs, at most one is last), so that the bound skips one.
    for _ in range(5):
        if check_below_bound():
            break
        answer_pairs(rater, limit=1)
    session_state(rater=rater)
    every = desk_sql.session_rows(rater_id=rater.pk)
    answered = [row for row in every if row.status == AssignmentStatus.ANSWERED]
    comparisons = [row for row in answered if row.kind == "comparison"]
    assert any(row.kind == "attention" for row in every)
    # The rater's bound: nothing served below it, the start of the session skipped, and
    # the attention checks read whatever their place.
    rater.refresh_from_db()
    served = [row.pk for row in every if row.status == AssignmentStatus.SERVED]
    assert answered[0].pk < rater.live_from <= min(served)
    assert check_below_bound()
    # Nothing named, the last pair named, and a whole earlier screen named by one pair.
    for tokens in ([], [answered[-1].token], [comparisons[0].token]):
        named = {row.screen for row in every if row.token in tokens and row.screen}
        live = desk_sql.session(rater_id=rater.pk, tokens=tokens, live_from=rater.live_from)
        expected = [row for row in every if desk_sql.is_live(row, tokens, named)]
        assert len(expected) < len(every)
        assert [_values(row, desk_sql.ROW_SKIP) for row in live] == [
            _values(row, desk_sql.ROW_SKIP) for row in expected
        ]
        assert [(r.current_answer, r.current_vote) for r in live] == [  # type: ignore[attr-defined]
            (r.current_answer, r.current_vote)  # type: ignore[attr-defined]
            for r in expected
        ]
        # The same rows, read with the rater in one statement (a vote read without the
        # lock), and the rater the same as read alone.
        client_id = uuid.uuid4()
        read, rows = desk_sql.rater_and_session(
            slug=study.slug, session_token=rater.session_token, client_id=client_id, tokens=tokens
        )
        alone = desk_sql.rater_with_study(
            slug=study.slug, session_token=rater.session_token, client_id=client_id, lock=False
        )
        assert read is not None and alone is not None
        assert (read.client_vote, read.version) == (alone.client_vote, alone.version)
        assert _values(read.rater) == _values(alone.rater)
        assert _values(read.rater.study) == _values(alone.rater.study)
        assert [_values(r, desk_sql.ROW_SKIP) for r in rows] == [
            _values(r, desk_sql.ROW_SKIP) for r in live
        ]
        assert [(r.current_answer, r.current_vote) for r in rows] == [  # type: ignore[attr-defined]
            (r.current_answer, r.current_vote)  # type: ignore[attr-defined]
            for r in live
        ]
        for token in tokens:  # a named pair comes with every question of its screen
            named_row = next(row for row in every if row.token == token)
            key = named_row.screen or named_row.token
            siblings = {row.pk for row in every if (row.screen or row.token) == key}
            assert siblings <= {row.pk for row in live}
            if one_screen and named_row.kind == "comparison":
                assert len(siblings) == 2


@pytest.mark.postgres
def test_the_rater_paths_statements_are_prepared_once_per_connection() -> None:
    """Django's backend prepares nothing unless told (config.settings turns it on): each
    statement of the rater path is prepared on its connection (once per set of parameter
    types: a client id or none) and then only executed. The session read (a vote names
    its pair) runs on a generic plan, not one planned anew on every call (planning it
    costs PostgreSQL more than running it)."""
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=8)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans, generic_plans "
            "FROM pg_prepared_statements"
        )
        found = cursor.fetchall()
    prepared = [(text, n) for text, n, _generic in found]
    generic = {text: n for text, _n, n in found}
    session = desk_sql._session_sql(connection.vendor, 1)
    for statement in (
        desk_sql._rater_sql(connection.vendor, True),
        session,
        desk_sql._insert_moving_sql(Vote, connection.vendor, 1, 1, None),
        desk_sql._insert_sql(Assignment, connection.vendor, 1),
    ):
        parts = statement.split("%s")  # the text PostgreSQL holds: numbered parameters
        server_form = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        runs = [n for text, n in prepared if text == server_form.replace("%%", "%")]
        assert 1 <= len(runs) <= 2 and sum(runs) >= 4, (statement, prepared)
        if statement == session:
            assert generic[server_form.replace("%%", "%")] >= 1, found
    assert any(text.startswith("WITH p AS MATERIALIZED") for text, _ in prepared), prepared


@pytest.mark.postgres
def test_an_array_literal_of_ids_reads_back_as_the_ids() -> None:
    """The avoided prompts go as one literal; anything but an integer is refused before
    it could reach the SQL."""
    ids = [3, 10**12, 0]
    found = desk_sql.execute("SELECT %s::bigint[]", [desk_sql.array_literal(ids)], fetch="one")
    assert found[0] == ids
    assert (
        desk_sql.execute("SELECT %s::bigint[]", [desk_sql.array_literal([])], fetch="one")[0] == []
    )
    with pytest.raises(ValueError):
        desk_sql.array_literal(["1}, {2"])  # type: ignore[list-item]


@pytest.mark.parametrize("one_screen", [False, True])
def test_a_vote_takes_the_next_comparison_as_the_take_alone_would(one_screen: bool) -> None:
    """insert_moving with a take (the next pick, in the vote's statement on PostgreSQL)
    against the same take run alone on the same data: the same rows, counted once."""
    study = make_live_study(
        systems=3, prompts=3, criteria=2 if one_screen else 1, criteria_on_one_screen=one_screen,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=2)
    session_state(rater=rater)

    def counts() -> dict[int, tuple[int, int]]:
        found = Comparison.objects.filter(study=study)
        return {c.pk: (c.shown_a_left, c.shown_b_left) for c in found}

    before = counts()
    with transaction.atomic():
        desk = assignments.open_desk(slug=study.slug, session_token=rater.session_token)
        avoid = assignments._variety(desk)[0]
        take = assignments._take_of(desk, avoid=avoid, lowest_only=True, wait=False)
        with transaction.atomic():
            alone = [tuple(row) for row in desk_sql.execute(take.sql(), take.params, fetch="all")]
            transaction.set_rollback(True)
        screen = desk.open_screens()[0]
        made = [
            Vote(assignment=row, answer="left", response_ms=900, client_id=uuid.uuid4())
            for row in screen
        ]
        done = desk_sql.insert_moving(
            made,
            [row.pk for row in screen],
            source=AssignmentStatus.SERVED,
            target=AssignmentStatus.ANSWERED,
            rater_id=rater.pk,
            tally=desk.tally.to_json(),
            live_from=rater.live_from,
            version=desk.version,
            take=take,
        )
    taken = done.taken
    assert alone and taken == alone and len(alone) == (2 if one_screen else 1)
    assert done.moved == len(screen)
    assert all(Vote.objects.filter(pk=v.pk).exists() for v in done.stored)
    after = counts()
    for pk, *_rest, a_left in taken:
        a, b = before[pk]
        assert after[pk] == ((a + 1, b) if a_left else (a, b + 1))
    assert {pk for pk in after if after[pk] != before[pk]} == {row[0] for row in taken}


@pytest.mark.postgres
def test_a_comparison_taken_with_a_vote_and_not_served_is_given_back() -> None:
    """The vote takes the next comparison ahead only where ``fill`` will serve one; should
    ``fill`` not (here the session ends between the two), the comparison is uncounted,
    so the loads still equal the pairs served."""
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    rater = make_judging_rater(study)
    session_state(rater=rater)

    def shown() -> int:
        found = Comparison.objects.filter(study=study)
        return sum(c.shown_a_left + c.shown_b_left for c in found)

    before = shown()
    with transaction.atomic():
        desk = assignments.open_desk(
            slug=study.slug, session_token=rater.session_token, serving=True
        )
        pair = desk.open_screens()[0][0]
        votes.store(desk, answers=[(pair.token, "left")], response_ms=900, client_id=uuid.uuid4())
        assert desk.ahead is not None and len(desk.ahead.taken) == 1
        assert shown() == before + 1  # taken with the vote
        assert desk.ahead.placed is not None  # and its pair inserted
        placed = desk.ahead.placed.row.pk
        assert Assignment.objects.filter(pk=placed, status="served").exists()
        desk.rater.outcome = "returned"  # the session ends before ``fill``
        assignments.fill(desk)
    assert desk.ahead is None and shown() == before
    assert not Assignment.objects.filter(pk=placed).exists()
    served = Assignment.objects.filter(rater=rater, kind="comparison").exclude(status="expired")
    assert served.count() == before


@pytest.mark.parametrize("seed", range(3))
def test_the_pairs_a_session_is_served_show_the_media_the_rule_chooses(seed: int) -> None:
    """Through the rater API: every pair served (on PostgreSQL most of them inserted by
    the vote's statement, desk_sql ``_place_sql``) shows the media ``_serve_comparison``
    chooses in Python for its comparison and load: the ``(load - 1) % n``-th of the
    seeds both systems have, a's on the side the counterbalance gave it. Three seeds a
    prompt, a quarter of the outputs withheld and loads at random, so that the choice
    wraps around and some seeds have one system only."""
    rng = random.Random(seed)
    study = make_live_study(
        systems=3, prompts=3, attention_check_rate=0, practice_comparisons=0,
        comparisons_per_session=12,
    )  # fmt: skip
    for system in System.objects.filter(study=study):
        for prompt in Prompt.objects.filter(study=study):
            for extra in (1, 2):
                make_asset(system, prompt, seed=extra)
    outputs = list(Asset.objects.outputs().filter(system__study=study))
    for asset in rng.sample(outputs, len(outputs) // 4):
        asset.withheld = True
        asset.save(update_fields=["withheld"])
    for comparison in Comparison.objects.filter(study=study):
        comparison.shown_a_left = rng.randrange(4)
        comparison.shown_b_left = rng.randrange(4)
        comparison.save(update_fields=["shown_a_left", "shown_b_left"])
    content.clear()
    browser = Client()
    rater = start_rater(browser, study)
    session = rater_api(browser, study, "session", {}).json()
    checked = 0
    while session["comparisons"]:
        body = {
            "assignment": session["comparisons"][0]["id"],
            "answer": rng.choice(["left", "right"]),
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        }
        response = rater_api(browser, study, "votes", body)
        assert response.status_code == 201, response.content
        session = response.json()["session"]
        checked += 1
    served = Assignment.objects.filter(rater=rater, kind="comparison")
    for row in served.select_related("comparison", "left_asset"):
        served_as = row.comparison
        assert served_as is not None
        load = served_as.shown_a_left + served_as.shown_b_left  # one rater: as served
        media = content.prompt_media(study, row.prompt_id)
        pairs = media.pairs(served_as.system_a_id, served_as.system_b_id)
        a_asset, b_asset = pairs[(load - 1) % len(pairs)]
        a_left = row.left_asset.system_id == served_as.system_a_id
        expected = (a_asset.pk, b_asset.pk) if a_left else (b_asset.pk, a_asset.pk)
        assert (row.left_asset_id, row.right_asset_id) == expected, row.pk
    assert served.count() == checked >= 6  # the pool runs out: every pair was answered
