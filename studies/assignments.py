"""An assignment's life: served, then answered, expired, replaced or flagged.

The functions here are the only ones that move an assignment's status, and they move its
comparison's counters with it: serving counts the side shown on the comparison, giving a
pair back (expiry, a load failure, a flag) uncounts it, answering changes no counter.

A request of the rater flow runs in one transaction around a ``Desk``: the rater's row,
locked, with the rest of the session summed up on it (studies.tally), and the pairs the
request works on. ``open_desk`` reads them in two statements (in one without the lock);
a vote (studies.votes) adds one statement that stores it, moves its pair and adds it
to the tally (``answer``); ``fill`` serves the next pair with one UPDATE … RETURNING
(the pick of studies.scheduler inside it) and one INSERT. Where the request serves
after the vote and the next screen is certainly a comparison, both ride in the vote's
statement (``_take_ahead``; the INSERT only with one question a screen). What a pair
shows comes from studies.content's cache.

A vote whose next screen rides in its statement runs at once (``act_at_once``): the
desk is read without the lock and outside a transaction, and the vote's statement
stands only on the rater row it was decided on (every request that changes a session
writes that row, a lock taken included). Two round trips on PostgreSQL, no BEGIN or
COMMIT, whatever the study's size; any other request, or a vote that finds its session
changed, runs under the lock: five and more.
"""

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import NotAuthenticated

from studies import content, debounce, desk_sql, realness, scheduler, webhooks
from studies.content import Known, StudyContent
from studies.exceptions import FlagRefused, NotYourAssignment
from studies.models import (
    REALNESS_ANSWERS,
    Answer,
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Comparison,
    Criterion,
    Flag,
    FlagDecision,
    PairSelection,
    Rater,
    RaterOutcome,
    Study,
    Vote,
    WebhookEvent,
)
from studies.scheduler import MAIN_KINDS, SessionPlan
from studies.tally import TALLY_COLUMNS, Tally, tally_of

T = TypeVar("T")

# How many screens a rater holds: the one on show and the one being preloaded.
OPEN_SCREENS = 2
SWEEP_EVERY_SECONDS = 60
# Looks past rows other raters are taking before waiting on one (about 0.3 s in all).
PICK_RETRIES = 12
# An identical pair's honest answers: the two sides are the same medium.
TRAP_PASSES = (Answer.TIE, Answer.BOTH_BAD)


# What a pick is taken by: the prompts avoided, lowest load only, wait for a locked row.
Rule = tuple[frozenset[int], bool, bool]


@dataclass(frozen=True)
class Placed:
    """A pair inserted by the vote's statement for the comparison it took: the
    assignment (its key set; its prompt, criterion and media to attach) and its media."""

    row: Assignment
    left_asset_id: int
    right_asset_id: int


@dataclass(frozen=True)
class Ahead:
    """What a vote's statement took for ``fill`` (``_take_ahead``): the rule the pick
    followed (avoided prompts, lowest load only, wait), the rows taken and the pair
    placed for them (None: none was, or the screen has several questions)."""

    rule: Rule
    taken: list[tuple[Any, ...]]
    placed: Placed | None


@dataclass(frozen=True)
class Progress:
    practice_done: int
    practice_total: int
    done: int
    total: int


@dataclass(frozen=True)
class SessionState:
    """What the comparison page needs: the open screens in order (show the first, preload
    the second; a screen is one pair with one or more questions) and whether judging is
    over or paused."""

    screens: list[list[Assignment]]
    progress: Progress
    finished: bool
    paused: bool
    short: bool = False  # fewer screens than wanted: serve again in a new transaction

    @property
    def assignments(self) -> list[Assignment]:
        return [row for screen in self.screens for row in screen]


@dataclass
class Desk:
    """A rater's session inside one request: the rater (row locked for a POST), the
    study's content, the pairs the request reads as rows (studies.desk_sql.is_live: those
    on screen with their prompt, criterion and media attached, the attention checks, the
    screens the request names), in serving order, and the answered screens summed up
    (``tally``, kept on the rater's row), so that a request's work does not grow with the
    session."""

    rater: Rater
    plan: SessionPlan
    content: StudyContent
    rows: list[Assignment]
    # The assignment that already holds a vote with the request's client id, if any.
    client_vote_assignment: int | None = None
    tally: Tally = field(default_factory=Tally)
    # The request serves after it acts (a POST of the rater API): a vote may then take the
    # next comparison in its own statement (``_take_ahead``), kept in ``ahead`` with the
    # rule it was taken by until ``fill`` asks for it.
    serving: bool = False
    ahead: Ahead | None = None
    # The pair placed with the vote for the comparison ``_take`` just handed out.
    placed: Placed | None = None
    # The rater row's version as read (desk_sql.rater_with_study): the vote's statement
    # stores nothing where the row changed since.
    version: str | None = None
    # Read without the rater's lock and outside a transaction (``act_at_once``): what
    # needs the lock raises NotAtOnce before it writes anything.
    at_once: bool = False
    _all_pairs: list[tuple[int, str, int, int, int]] | None = field(default=None, repr=False)

    @property
    def study(self) -> Study:
        return self.rater.study

    def named(self, token: str) -> Assignment | None:
        return next((row for row in self.rows if row.token == token), None)

    def screen_of(self, assignment: Assignment) -> list[Assignment]:
        key = assignment.screen or assignment.token
        return [row for row in self.rows if (row.screen or row.token) == key]

    def open_screens(self) -> list[list[Assignment]]:
        screens: dict[str, list[Assignment]] = {}
        for row in self.rows:
            if row.status == AssignmentStatus.SERVED:
                screens.setdefault(row.screen or row.token, []).append(row)
        return list(screens.values())

    def answered(self, kinds: Sequence[str]) -> int:
        return self.tally.answered(kinds)

    def counted(self, kinds: Sequence[str]) -> int:
        """Screens of these kinds answered or on screen (scheduler.COUNTED)."""
        served = {
            row.screen or row.token
            for row in self.rows
            if row.kind in kinds and row.status == AssignmentStatus.SERVED
        }
        return self.answered(kinds) + len(served)

    def all_pairs(self) -> list[tuple[int, str, int, int, int]]:
        """Every pair of the session, past ones too, in serving order, as (id, kind,
        prompt, left medium, right medium): one query, for the few serves that need the
        whole session (an identical-pair trap, a real-or-generated image)."""
        if self._all_pairs is None:
            self._all_pairs = list(
                Assignment.objects.filter(rater_id=self.rater.pk)
                .order_by("pk")
                .values_list("pk", "kind", "prompt_id", "left_asset_id", "right_asset_id")
            )
        return self._all_pairs

    def failed_checks(self) -> int:
        failed = 0
        for row in self.rows:
            answer = getattr(row, "current_answer", None)
            if row.kind == AssignmentKind.ATTENTION and answer and not passes(row, answer):
                failed += 1
        return failed

    def progress(self) -> Progress:
        return Progress(
            practice_done=self.answered([AssignmentKind.PRACTICE]),
            practice_total=self.plan.practice,
            done=self.answered(MAIN_KINDS),
            total=self.plan.main,
        )


def passes(assignment: Assignment, answer: str) -> bool:
    """Whether an answer to a known-answer pair (or a real-or-generated image) is right."""
    if assignment.expected_answer in REALNESS_ANSWERS:
        return answer == assignment.expected_answer
    if assignment.left_asset_id == assignment.right_asset_id:
        return answer in TRAP_PASSES
    return answer == assignment.expected_answer


def open_desk(
    *,
    slug: str,
    session_token: str | None,
    lock: bool = True,
    client_id: uuid.UUID | None = None,
    tokens: Sequence[str] = (),
    serving: bool = False,
    at_once: bool = False,
) -> Desk:
    """Read the rater (locked when ``lock``) and their session's pairs (those on screen,
    the checks, and the screens of the pairs named by ``tokens``): two statements with
    the lock, one without (studies.desk_sql); what the pairs show comes from
    studies.content's cache.
    ``serving``: ``fill`` runs on this desk after the request acts (``Desk.serving``);
    ``at_once``: see ``act_at_once``."""
    read: desk_sql.RaterRead | None = None
    rows: list[Assignment] = []
    if session_token and lock:  # the rows after the lock, in a snapshot that follows it
        read = desk_sql.rater_with_study(
            slug=slug, session_token=session_token, client_id=client_id, lock=True
        )
    elif session_token:
        read, rows = desk_sql.rater_and_session(
            slug=slug, session_token=session_token, client_id=client_id, tokens=tokens
        )
    # Past judging is allowed too: a retry of the last vote must find the stored one.
    if read is None or read.rater.consented_at is None:
        if not Study.objects.filter(slug=slug).exists():
            raise Http404("No such study.")
        raise NotAuthenticated("No judging session for this study in this browser.")
    rater = read.rater
    study = rater.study
    study_content = content.study_content(study)
    if lock:
        rows = desk_sql.session(rater_id=rater.pk, tokens=tokens, live_from=rater.live_from)
    # Only the pairs on screen are shown or answered: attaching media to the others cost
    # a tenth of a vote's CPU at 50 pairs.
    _attach(study, study_content, [row for row in rows if row.status == AssignmentStatus.SERVED])
    return Desk(
        rater=rater,
        plan=scheduler.session_plan(study=study, rater=rater),
        content=study_content,
        rows=rows,
        client_vote_assignment=read.client_vote,
        tally=Tally.from_json(rater.tally),
        serving=serving,
        version=read.version,
        at_once=at_once,
    )


def _attach(study: Study, study_content: StudyContent, rows: list[Assignment]) -> None:
    """Give each pair its prompt, criterion and media from the content cache (the prompt's
    media hold every medium made for it); what the cache lacks, one query fetches. The
    related objects go straight into the instances' field caches: the descriptors'
    checks cost more than the whole lookup, and the ids are the rows' own."""
    criteria = {c.pk: c for c in study_content.criteria}
    prompts: dict[int, content.PromptMedia] = {}
    missing: dict[int, list[tuple[Assignment, str]]] = {}
    for row in rows:
        media = prompts.get(row.prompt_id)
        if media is None:
            media = prompts[row.prompt_id] = content.prompt_media(study, row.prompt_id)
        cached = row._state.fields_cache
        cached["prompt"] = media.prompt
        criterion = criteria.get(row.criterion_id)
        if criterion is None:  # not in the cache: a criterion deleted since (rare)
            criterion = Criterion.objects.get(pk=row.criterion_id)
        cached["criterion"] = criterion
        for side, asset_id in (
            ("left_asset", row.left_asset_id),
            ("right_asset", row.right_asset_id),
        ):
            asset = media.assets.get(asset_id) or study_content.assets.get(asset_id)
            if asset is None:
                missing.setdefault(asset_id, []).append((row, side))
            else:
                cached[side] = asset
    if missing:
        for asset in Asset.objects.filter(pk__in=missing).select_related("prompt"):
            for row, side in missing[asset.pk]:
                row._state.fields_cache[side] = asset


def _deadline(study: Study) -> datetime:
    return timezone.now() + timedelta(minutes=study.assignment_timeout_minutes)


# --- serving -------------------------------------------------------------------------


def _take_of(
    desk: Desk,
    *,
    avoid: set[int],
    lowest_only: bool,
    wait: bool,
    place: Assignment | None = None,
) -> desk_sql.Take:
    """The scheduler's pick and the UPDATE that counts the side it shows on the picked
    comparison (and, with all criteria on one screen, on its siblings), returning the
    rows changed as (pk, prompt, criterion, system a, system b, load, a on the left);
    ``place``, the pair to insert for it where a vote runs it (desk_sql.Take)."""
    study = desk.study
    one_screen = study.criteria_on_one_screen
    criterion_id = desk.content.primary.pk if one_screen else None
    inner, params = desk_sql.pick(
        rater_id=desk.rater.pk,
        study_id=study.pk,
        criterion_id=criterion_id,
        avoid_prompts=avoid,
        lowest_only=lowest_only,
        wait=wait,
        adaptive=study.pair_selection == PairSelection.ADAPTIVE,
    )
    if one_screen:
        match = "c.study_id = %s AND c.prompt_id = p.pick_prompt AND c.system_a_id = p.pick_a "
        match += "AND c.system_b_id = p.pick_b"
        tail: tuple[Any, ...] = (study.pk,)
    else:
        match, tail = "c.id = p.pick_id", ()
    table = connection.ops.quote_name(Comparison._meta.db_table)
    update = (
        f"UPDATE {table} AS c SET "
        "shown_a_left = c.shown_a_left + p.pick_a_left, "
        "shown_b_left = c.shown_b_left + 1 - p.pick_a_left, "
        "last_a_left = (p.pick_a_left = 1) "
        f"FROM p WHERE {match} "
        "RETURNING id, prompt_id, criterion_id, system_a_id, system_b_id, "
        "shown_a_left + shown_b_left AS load, last_a_left AS a_left"
    )
    return desk_sql.Take(pick=inner, update=update, params=(*params, *tail), place=place)


def _rule(avoid: set[int], lowest_only: bool, wait: bool) -> Rule:
    """What a take is taken by, to tell whether ``fill`` asks for what a vote took."""
    return frozenset(avoid), lowest_only, wait


def _take(desk: Desk, *, avoid: set[int], lowest_only: bool, wait: bool) -> list[tuple[Any, ...]]:
    """Take the next comparison (``_take_of``); the rows taken ahead with the vote
    (``answer``) when they were taken by the same rule, their pair in ``desk.placed``."""
    ahead, desk.ahead = desk.ahead, None
    if ahead is not None:
        if ahead.rule == _rule(avoid, lowest_only, wait):
            desk.placed = ahead.placed
            return ahead.taken
        _give_back_ahead(ahead.taken, ahead.placed)
    take = _take_of(desk, avoid=avoid, lowest_only=lowest_only, wait=wait)
    return list(desk_sql.execute(take.sql(), take.params, fetch="all"))


def _give_back_ahead(taken: list[tuple[Any, ...]], placed: Placed | None) -> None:
    """Undo what a vote took and placed and ``fill`` did not serve (rare: see
    ``_take_ahead``): the pair never reached the rater, so it goes, and its comparison
    is uncounted."""
    if placed is not None:
        Assignment.objects.filter(pk=placed.row.pk).delete()
    for pk, *_rest, a_left in taken:
        _uncount([pk], a_left=bool(a_left))


def _comparison_due(desk: Desk) -> bool:
    """Whether ``fill`` will serve a comparison from the pool straight away: the session
    wants a screen, practice is over and the plan's next position is not a check."""
    rater, study, plan = desk.rater, desk.study, desk.plan
    if not study.is_open_to_raters or rater.outcome or study.is_realness:
        return False
    if len(desk.open_screens()) >= OPEN_SCREENS:
        return False
    position = desk.counted(MAIN_KINDS)
    return (
        desk.counted([AssignmentKind.PRACTICE]) >= plan.practice
        and position < plan.main
        and position not in plan.checks
    )


def _take_ahead(desk: Desk, screen: Sequence[Assignment]) -> tuple[Rule, desk_sql.Take] | None:
    """The pick ``fill`` will run next and, with one question a screen, the pair it is
    served as, to run with the vote's statement (two round trips less), where the
    request serves after the vote (``Desk.serving``) and the answer cannot end the
    session (an attention check can). ``_take`` hands them out when ``fill`` asks by the
    same rule; otherwise they are given back, so that a comparison is never counted for
    a pair not served, nor a pair left that no one was shown."""
    if not desk.serving or connection.vendor != "postgresql":
        return None
    if screen[0].kind == AssignmentKind.ATTENTION or not _comparison_due(desk):
        return None
    avoid = _variety(desk)[0]
    study = desk.study
    place = None
    if not study.criteria_on_one_screen:  # one pair a screen: placed in the same statement
        place = Assignment(
            study=study,
            rater=desk.rater,
            kind=AssignmentKind.COMPARISON,
            expires_at=_deadline(study),
        )
    take = _take_of(desk, avoid=avoid, lowest_only=True, wait=False, place=place)
    return _rule(avoid, lowest_only=True, wait=False), take


def _variety(desk: Desk) -> list[set[int]]:
    """The prompts to leave out, strictest rule first, nothing last (a pool near
    exhausted)."""
    uses = dict(desk.tally.prompts)
    last = desk.tally.last
    for rows in _screens(desk):  # the comparisons on screen count too
        first = rows[0]
        if first.kind == AssignmentKind.COMPARISON and first.status == AssignmentStatus.SERVED:
            uses[first.prompt_id] = uses.get(first.prompt_id, 0) + 1
            if last is None or first.pk > last[0]:
                last = (first.pk, first.prompt_id)
    count = desk.content.prompt_count
    share = scheduler.prompt_share(plan=desk.plan, prompt_count=count)
    rules = [
        scheduler.prompts_to_avoid(
            uses=uses,
            last=last[1] if last else None,
            prompt_count=count,
            share=share,
            strict=strict,
        )
        for strict in (True, False)
    ]
    return [*rules, set()]


def _screens(desk: Desk) -> list[list[Assignment]]:
    screens: dict[str, list[Assignment]] = {}
    for row in desk.rows:
        screens.setdefault(row.screen or row.token, []).append(row)
    return list(screens.values())


def _pick_rows(desk: Desk) -> list[tuple[Any, ...]]:
    """Take the next comparison: under the strictest variety rule that leaves one.

    Rows other raters are taking are skipped. When that leaves nothing they will be free
    in a few milliseconds: look again (each look sees the new loads, so waiting raters
    spread out instead of queueing on one row) and, as a last resort, wait for a row. A
    serving transaction takes one comparison, but a pick may keep the lock on a row it
    re-checked and passed over, so waits can form a cycle now and then: PostgreSQL
    aborts one transaction, which runs again (``retrying_deadlocks``).
    """
    study = desk.study
    criterion_id = desk.content.primary.pk if study.criteria_on_one_screen else None
    for avoid in _variety(desk):
        rows = _take(desk, avoid=avoid, lowest_only=True, wait=False)
        if rows:
            return rows
        left = scheduler.has_unjudged(
            rater_id=desk.rater.pk, study=study, criterion_id=criterion_id, avoid_prompts=avoid
        )
        if not left:
            continue
        for attempt in range(PICK_RETRIES):
            time.sleep(random.uniform(0.002, 0.004) * (attempt + 1))
            rows = _take(desk, avoid=avoid, lowest_only=True, wait=False)
            if rows:
                return rows
        # Last resort: wait for the first row in load order, whatever its load by then.
        rows = _take(desk, avoid=avoid, lowest_only=False, wait=True)
        if rows:
            return rows
    return []


def _serve_comparison(desk: Desk) -> list[Assignment] | None:
    study = desk.study
    while True:
        rows = _pick_rows(desk)
        if not rows:
            return None
        order = {criterion.pk: i for i, criterion in enumerate(desk.content.criteria)}
        rows.sort(key=lambda row: order.get(row[2], len(order)))
        _pk, prompt_id, _criterion, system_a, system_b, load, a_left = rows[0]
        media = content.prompt_media(study, prompt_id)
        pairs = media.pairs(system_a, system_b)
        placed, desk.placed = desk.placed, None
        if pairs and placed is not None:  # inserted with the vote
            return [_placed_row(desk, placed, media, rows[0])]
        if pairs:
            break
        if placed is not None:  # its comparison is uncounted below
            _give_back_ahead([], placed)
        # Its media were withheld since the cache was filled: take it out of the pool.
        ids = [row[0] for row in rows]
        Comparison.objects.filter(pk__in=ids).update(available=False)
        _uncount(ids, a_left=bool(a_left))
    a_asset, b_asset = pairs[(load - 1) % len(pairs)]
    left, right = (a_asset, b_asset) if a_left else (b_asset, a_asset)
    deadline = _deadline(study)
    screen = [
        Assignment(
            study=study,
            rater=desk.rater,
            kind=AssignmentKind.COMPARISON,
            comparison_id=pk,
            prompt=media.prompt,
            criterion=desk.content.criterion(criterion_id),
            left_asset=left,
            right_asset=right,
            expires_at=deadline,
        )
        for pk, _p, criterion_id, *_rest in rows
    ]
    return _insert(screen)


def _placed_row(
    desk: Desk, placed: Placed, media: content.PromptMedia, taken: tuple[Any, ...]
) -> Assignment:
    """The pair the vote's statement inserted for the comparison ``taken``, as
    ``_insert`` leaves a new one: its prompt, criterion and media attached (from the
    cache, where it has them)."""
    row = placed.row
    row.comparison_id, row.prompt_id, row.criterion_id = taken[0], taken[1], taken[2]
    cached = row._state.fields_cache
    cached["prompt"] = media.prompt
    cached["criterion"] = desk.content.criterion(row.criterion_id)
    for side, asset_id in (
        ("left_asset", placed.left_asset_id),
        ("right_asset", placed.right_asset_id),
    ):
        setattr(row, f"{side}_id", asset_id)
        found = media.assets.get(asset_id)
        cached[side] = found or Asset.objects.select_related("prompt").get(pk=asset_id)
    row.current_answer = None  # type: ignore[attr-defined]
    row.current_vote = None  # type: ignore[attr-defined]
    return row


def _insert(screen: list[Assignment]) -> list[Assignment]:
    if len(screen) > 1:
        for row in screen:
            row.screen = screen[0].token
    for row in screen:
        row.current_answer = None  # type: ignore[attr-defined]
        row.current_vote = None  # type: ignore[attr-defined]
    desk_sql.insert(screen)
    return screen


def _known_material(desk: Desk) -> list[Known]:
    return [known for c in desk.content.criteria for known in desk.content.known[c.pk]]


def _known_pair(desk: Desk, known: Known, kind: str, rng: random.Random) -> list[Assignment]:
    better_left = rng.random() < 0.5
    return _insert(
        [
            Assignment(
                study=desk.study,
                rater=desk.rater,
                kind=kind,
                prompt=known.prompt,
                criterion=known.criterion,
                left_asset=known.better if better_left else known.worse,
                right_asset=known.worse if better_left else known.better,
                expected_answer=Answer.LEFT if better_left else Answer.RIGHT,
                expires_at=_deadline(desk.study),
            )
        ]
    )


def _serve_practice(desk: Desk, position: int) -> list[Assignment] | None:
    """Practice teaches each criterion in turn with material whose answer is known for
    that very question."""
    taught = [c for c in desk.content.criteria if desk.content.known[c.pk]]
    if not taught:
        return None
    criterion = taught[position % len(taught)]
    rng = random.Random(f"practice:{desk.rater.session_token}:{position}")
    return _known_pair(desk, rng.choice(desk.content.known[criterion.pk]), "practice", rng)


def _trap_asset(desk: Desk, rng: random.Random) -> Asset | None:
    seen = [
        (prompt, asset)
        for _pk, kind, prompt, left, right in desk.all_pairs()
        if kind == AssignmentKind.COMPARISON
        for asset in (left, right)
    ]
    if seen:
        prompt_id, asset_id = rng.choice(seen)
        found = content.prompt_media(desk.study, prompt_id).assets.get(asset_id)
        return found or Asset.objects.select_related("prompt").get(pk=asset_id)
    return (
        Asset.objects.outputs()
        .filter(system__study=desk.study, withheld=False)
        .select_related("prompt")
        .order_by("pk")
        .first()
    )


def _serve_check(desk: Desk, position: int) -> list[Assignment] | None:
    """An attention check: a known-answer pair (an output against its corrupted copy, or
    practice-grade material) or an identical-pair trap, whose honest answer is a tie."""
    rng = random.Random(f"check:{desk.rater.session_token}:{position}")
    material = _known_material(desk)
    kinds = (["known"] if material else []) + (
        ["identical"] if Answer.TIE in desk.study.allowed_answers else []
    )
    if not kinds:
        return None
    if rng.choice(kinds) == "known":
        return _known_pair(desk, rng.choice(material), AssignmentKind.ATTENTION, rng)
    asset = _trap_asset(desk, rng)
    if asset is None:
        return None
    criteria = desk.content.criteria
    return _insert(
        [
            Assignment(
                study=desk.study,
                rater=desk.rater,
                kind=AssignmentKind.ATTENTION,
                prompt=asset.prompt,
                criterion=criteria[rng.randrange(len(criteria))],
                left_asset=asset,
                right_asset=asset,
                expected_answer=Answer.TIE,
                expires_at=_deadline(desk.study),
            )
        ]
    )


def _serve_image(desk: Desk, pick: realness.Pick | None, kind: str) -> list[Assignment] | None:
    """One image of a real-or-generated study: the same medium on both sides of the row,
    its truth as the expected answer, the study's exposure fixed now."""
    if pick is None:
        return None
    return _insert(
        [
            Assignment(
                study=desk.study,
                rater=desk.rater,
                kind=kind,
                prompt=pick.asset.prompt,
                criterion=desk.content.primary,
                left_asset=pick.asset,
                right_asset=pick.asset,
                expected_answer=pick.truth,
                exposure_ms=desk.study.exposure_ms,
                expires_at=_deadline(desk.study),
            )
        ]
    )


def _serve_realness(desk: Desk, practice: int) -> list[Assignment] | None:
    study, plan, token = desk.study, desk.plan, desk.rater.session_token
    pairs = desk.all_pairs()
    seen = {left for _pk, _kind, _prompt, left, _right in pairs}
    if practice < plan.practice:
        pick = realness.pick_practice(study=study, position=practice, seen=seen, seed=token)
        served = _serve_image(desk, pick, AssignmentKind.PRACTICE)
        if served is not None:
            return served
    position = desk.counted(MAIN_KINDS)
    if position >= plan.main:
        return None
    rng = random.Random(f"realness:{token}:{position}")
    if position in plan.checks:
        check = realness.pick_check(study=study, seen=seen, rng=rng)
        if check is not None:
            return _serve_image(desk, check, AssignmentKind.ATTENTION)
    judged = [prompt for _pk, kind, prompt, _l, _r in pairs if kind == AssignmentKind.JUDGMENT]
    real = position in realness.real_positions(plan=plan, real_share=study.real_share, seed=token)
    pick = realness.pick_trial(
        study=study,
        real=real,
        seen=seen,
        last_prompt=judged[-1] if judged else None,
        rng=rng,
    )
    return _serve_image(desk, pick, AssignmentKind.JUDGMENT)


def serve(desk: Desk) -> list[Assignment] | None:
    """Serve the rater's next screen as their plan says; None when there is none."""
    plan = desk.plan
    practice = desk.counted([AssignmentKind.PRACTICE])
    served: list[Assignment] | None = None
    if desk.study.is_realness:
        served = _serve_realness(desk, practice)
        if served is not None:
            desk.rows.extend(served)
        return served
    if practice < plan.practice:
        served = _serve_practice(desk, practice)
    if served is None:
        position = desk.counted(MAIN_KINDS)
        if position >= plan.main:
            return None
        if position in plan.checks:
            served = _serve_check(desk, position)
        if served is None:
            served = _serve_comparison(desk)
    if served is not None:
        desk.rows.extend(served)
    return served


def fill(desk: Desk) -> SessionState:
    """Serve one screen if the rater holds fewer than two; returns the state, whose
    ``short`` says another transaction should serve again. Only POSTs call this.

    One screen per transaction: a transaction then takes one comparison while it may
    wait for another, which keeps waits short and cycles rare (see ``_pick_rows``).
    After a vote at once, only the pair its statement placed is served here.
    """
    if desk.at_once and not _serves_ahead(desk):
        return _serve_under_lock(desk)
    rater, study = desk.rater, desk.study
    wants_more = study.is_open_to_raters and not rater.outcome
    exhausted = False
    if wants_more and len(desk.open_screens()) < OPEN_SCREENS:
        exhausted = serve(desk) is None
    if desk.ahead is not None:  # taken with the vote, not served after all
        _give_back_ahead(desk.ahead.taken, desk.ahead.placed)
        desk.ahead = None
    open_screens = desk.open_screens()
    # A rater who failed the attention checks is done at once; otherwise judging ends
    # when the plan is complete or nothing is left that they have not judged.
    finished = bool(rater.outcome) or (not open_screens and exhausted)
    if finished and rater.judging_done_at is None:
        rater.judging_done_at = timezone.now()
        Rater.objects.filter(pk=rater.pk).update(judging_done_at=rater.judging_done_at)
    return SessionState(
        screens=[] if rater.outcome else open_screens,
        progress=desk.progress(),
        finished=finished,
        paused=not open_screens and not finished,
        short=wants_more and not exhausted and len(open_screens) < OPEN_SCREENS,
    )


def _serves_ahead(desk: Desk) -> bool:
    """Whether ``fill`` would serve the pair the vote's statement placed, and do nothing
    else: then it runs no statement."""
    ahead = desk.ahead
    if ahead is None or ahead.placed is None or not _comparison_due(desk):
        return False
    if ahead.rule != _rule(_variety(desk)[0], lowest_only=True, wait=False):
        return False
    _pk, prompt_id, _criterion, system_a, system_b, *_rest = ahead.taken[0]
    return bool(content.prompt_media(desk.study, prompt_id).pairs(system_a, system_b))


def _serve_under_lock(desk: Desk) -> SessionState:
    """After a vote at once that ``fill`` cannot finish without a statement: a comparison
    the vote's statement counted without placing a pair is given back, a pair it placed
    stays served, and the state asks for serving again (under the rater's lock)."""
    ahead, desk.ahead = desk.ahead, None
    if ahead is not None and ahead.placed is None and ahead.taken:
        with transaction.atomic(savepoint=False):
            _give_back_ahead(ahead.taken, None)
    return SessionState(
        screens=desk.open_screens(),
        progress=desk.progress(),
        finished=False,
        paused=False,
        short=True,
    )


def read_state(desk: Desk) -> SessionState:
    """The session as it stands, serving nothing: what a GET may answer."""
    rater = desk.rater
    open_screens = desk.open_screens()
    finished = bool(rater.outcome) or rater.judging_done_at is not None
    return SessionState(
        screens=[] if rater.outcome else open_screens,
        progress=desk.progress(),
        finished=finished,
        paused=not open_screens and not finished and not desk.study.is_open_to_raters,
    )


# --- answering and giving back -------------------------------------------------------


def answer(desk: Desk, screen: Sequence[Assignment], votes: Sequence[Vote]) -> list[Vote]:
    """Store a screen's votes, move its pairs to answered and add the screen to the
    rater's tally: one statement on PostgreSQL (studies.desk_sql.insert_moving). A pair
    that expired meanwhile was given back; answered after all, it counts on its
    comparison again. Returns the stored votes."""
    served = [row.pk for row in screen if row.status == AssignmentStatus.SERVED]
    first = screen[0]
    if any(row.status in (AssignmentStatus.SERVED, AssignmentStatus.EXPIRED) for row in screen):
        # Served or expired, the screen ends answered (below, if the sweeper was first).
        desk.tally = desk.tally.with_screen(
            first_pk=first.pk, kind=first.kind, prompt_id=first.prompt_id
        )
    desk.rater.tally = desk.tally.to_json()
    for row in screen:
        row.status = AssignmentStatus.ANSWERED
    desk.rater.live_from = _live_from(desk)
    ahead = _take_ahead(desk, screen)
    if desk.at_once and (ahead is None or ahead[1].place is None or not served):
        # The request serves more than the vote's statement can (practice, a check, the
        # last pair, several questions a screen), or the sweeper was first.
        raise NotAtOnce
    done = desk_sql.insert_moving(
        votes,
        served,
        source=AssignmentStatus.SERVED,
        target=AssignmentStatus.ANSWERED,
        rater_id=desk.rater.pk,
        tally=desk.rater.tally,
        live_from=desk.rater.live_from,
        version=desk.version,
        take=ahead[1] if ahead else None,
    )
    stored, moved = done.stored, done.moved
    if ahead is not None and done.taken is not None:
        placed = Placed(*done.placed) if done.placed is not None else None
        desk.ahead = Ahead(ahead[0], done.taken, placed)
    if moved != len(served) or len(served) != len(screen):
        # The sweeper expired some of them just now (rare): count those again. (A vote
        # at once has stored its answer already: this is a transaction of its own.)
        with transaction.atomic(savepoint=False):
            late = Assignment.objects.select_for_update(of=("self",)).filter(
                pk__in=[row.pk for row in screen], status=AssignmentStatus.EXPIRED
            )
            for row in late.select_related("left_asset", "comparison"):
                _recount(row, +1)
            late.update(status=AssignmentStatus.ANSWERED)
    return stored


def _live_from(desk: Desk) -> int:
    """The rater's new ``live_from``: the first pair still served, or with none, past
    every pair read, the answered screen's among them (a pair served later is a new row,
    with a higher id: ids only rise, and the rater's lock makes their serving one at a
    time)."""
    served = [row.pk for row in desk.rows if row.status == AssignmentStatus.SERVED]
    return min(served) if served else max(row.pk for row in desk.rows) + 1


def _uncount(comparison_ids: Iterable[int], *, a_left: bool) -> None:
    side = "shown_a_left" if a_left else "shown_b_left"
    Comparison.objects.filter(pk__in=list(comparison_ids)).update(**{side: F(side) - 1})


def _recount(assignment: Assignment, step: int) -> None:
    """Count (+1) or uncount (−1) the side this pair showed on its comparison."""
    comparison = assignment.comparison
    if comparison is None:
        return
    a_left = assignment.left_asset.system_id == comparison.system_a_id
    side = "shown_a_left" if a_left else "shown_b_left"
    Comparison.objects.filter(pk=comparison.pk).update(**{side: F(side) + step})


def _give_back(
    pairs: QuerySet[Assignment], status: str, *, source: str = AssignmentStatus.SERVED
) -> int:
    """Move the ``source`` (served) pairs to ``status`` and give their comparisons back;
    returns how many."""
    moved = 0
    # In comparison order, so that two transactions giving pairs back cannot deadlock.
    served = pairs.filter(status=source).select_related("left_asset", "comparison")
    for assignment in served.order_by("comparison_id", "pk"):
        Assignment.objects.filter(pk=assignment.pk).update(status=status)
        _recount(assignment, -1)
        moved += 1
    return moved


def discard(pairs: QuerySet[Assignment]) -> int:
    """Set answered pairs aside (a discarded pilot): their comparisons are given back and
    their votes kept for audit but no longer current. Returns how many votes."""
    _give_back(pairs, AssignmentStatus.DISCARDED, source=AssignmentStatus.ANSWERED)
    retally(rater_ids=pairs.values_list("rater_id", flat=True).distinct())
    return Vote.objects.filter(assignment__in=pairs, is_current=True).update(is_current=False)


def retally(*, rater_ids: Iterable[int]) -> None:
    """Recompute these raters' tallies from their pairs (studies.tally.tally_of), where
    answered screens left their sessions."""
    for rater_id in list(rater_ids):
        rows = Assignment.objects.filter(rater_id=rater_id).values_list(*TALLY_COLUMNS)
        Rater.objects.filter(pk=rater_id).update(tally=tally_of(rows).to_json())


def expire(pairs: QuerySet[Assignment]) -> int:
    """Expire served pairs (abandoned, or their session ended) and give them back."""
    return _give_back(pairs, AssignmentStatus.EXPIRED)


def sweep_expired(*, study: Study) -> int:
    """Expire the study's pairs served and left unanswered past their deadline."""
    with transaction.atomic():
        return expire(
            Assignment.objects.select_for_update(skip_locked=True, of=("self",)).filter(
                study=study, status=AssignmentStatus.SERVED, expires_at__lt=timezone.now()
            )
        )


def sweep_now_and_then(slug: str) -> None:
    """Each process sweeps a study at most once a minute, in a transaction of its own
    before the request's; `manage.py expire_assignments` (or a periodic task) covers
    studies nobody is rating."""
    if debounce.first_in_window(f"verdict:sweep:{slug}", SWEEP_EVERY_SECONDS):
        study = Study.objects.open_to_raters().filter(slug=slug).first()
        if study is not None:
            sweep_expired(study=study)


def end_session(desk: Desk, outcome: str) -> None:
    """End the rater's session with an outcome; the pairs they hold go back to the pool."""
    rater = desk.rater
    if rater.outcome:
        return
    now = timezone.now()
    rater.outcome = outcome
    rater.completed_at = now
    rater.judging_done_at = rater.judging_done_at or now
    rater.save(update_fields=["outcome", "completed_at", "judging_done_at"])
    expire(Assignment.objects.filter(rater=rater))
    for row in desk.rows:
        if row.status == AssignmentStatus.SERVED:
            row.status = AssignmentStatus.EXPIRED


def replace(desk: Desk, token: str, detail: str) -> None:
    """A medium of this pair failed to load in the browser: record it and give the screen
    back; ``fill`` serves a replacement."""
    named = desk.named(token)
    if named is None:
        raise NotYourAssignment("No such pair in your session.")
    screen = desk.screen_of(named)
    pks = [row.pk for row in screen if row.status == AssignmentStatus.SERVED]
    _give_back(Assignment.objects.filter(pk__in=pks), AssignmentStatus.REPLACED)
    Assignment.objects.filter(pk__in=pks).update(load_error=detail[:300] or "load failure")
    for row in screen:
        if row.pk in pks:
            row.status = AssignmentStatus.REPLACED


def flag(desk: Desk, token: str, reason: str, side: str) -> Flag:
    """The rater flags a pair as broken, disturbing or impossible to judge: the screen is
    given back (and replaced by ``fill``), and the media flagged are withheld from later
    raters until a researcher reviews the flag."""
    named = desk.named(token)
    if named is None:
        raise NotYourAssignment("No such pair in your session.")
    if named.status != AssignmentStatus.SERVED:
        raise FlagRefused("Only a pair on screen can be flagged.")
    screen = desk.screen_of(named)
    pks = [row.pk for row in screen if row.status == AssignmentStatus.SERVED]
    _give_back(Assignment.objects.filter(pk__in=pks), AssignmentStatus.FLAGGED)
    for row in screen:
        row.status = AssignmentStatus.FLAGGED
    flagged = {"left": [named.left_asset], "right": [named.right_asset]}.get(
        side, [named.left_asset, named.right_asset]
    )
    record = Flag.objects.create(assignment=screen[0], reason=reason, side=side)
    record.assets.set(flagged)
    withhold(study=desk.study, assets=flagged)
    return record


def withhold(*, study: Study, assets: Sequence[Asset], withheld: bool = True) -> None:
    """Withhold media from raters (or show them again) and update which comparisons still
    have media to show."""
    Asset.objects.filter(pk__in=[a.pk for a in assets]).update(withheld=withheld)
    prompt_ids = {asset.prompt_id for asset in assets}
    content.bump(study.pk)
    refresh_availability(study=study, prompt_ids=prompt_ids)


def refresh_availability(*, study: Study, prompt_ids: Iterable[int]) -> None:
    """A comparison is served while both systems have media to show for its prompt and
    its criterion is not settled."""
    settled = set(study.criteria.filter(settled_at__isnull=False).values_list("pk", flat=True))
    for prompt_id in prompt_ids:
        outputs = Asset.objects.filter(
            system__study=study, prompt_id=prompt_id, kind=AssetKind.OUTPUT, withheld=False
        ).values_list("system_id", "seed")
        seeds: dict[int, set[int]] = {}
        for system_id, seed in outputs:
            seeds.setdefault(system_id, set()).add(seed)
        for comparison in Comparison.objects.filter(study=study, prompt_id=prompt_id):
            shown = comparison.criterion_id not in settled and bool(
                seeds.get(comparison.system_a_id, set()) & seeds.get(comparison.system_b_id, set())
            )
            if shown != comparison.available:
                Comparison.objects.filter(pk=comparison.pk).update(available=shown)


def settle_criteria(*, study: Study, votes: Mapping[int, int]) -> int:
    """Stop serving these criteria (criterion id: its votes now), whose rankings are
    settled (analysis.stopping decides): their comparisons leave the pool; pairs already
    on screen can still be answered. Returns how many were newly settled."""
    settled = 0
    now = timezone.now()
    for criterion_id, count in votes.items():
        newly = Criterion.objects.filter(
            study=study, pk=criterion_id, settled_at__isnull=True
        ).update(settled_at=now, settled_votes=count)
        if newly:
            key = study.criteria.get(pk=criterion_id).key
            webhooks.emit(
                study=study,
                event=WebhookEvent.RANKING_SETTLED,
                key=f"settled:{criterion_id}:{now.isoformat()}",
                data={"criterion": key, "votes": count},
            )
        settled += newly
    Comparison.objects.filter(study=study, criterion_id__in=list(votes)).update(available=False)
    return settled


def serve_settled_again(*, study: Study) -> int:
    """Serve the study's settled criteria again (the researcher wants more votes, or
    turned stopping off); returns how many."""
    again = study.criteria.filter(settled_at__isnull=False).update(
        settled_at=None, settled_votes=None
    )
    if again:
        refresh_availability(study=study, prompt_ids=study.prompts.values_list("pk", flat=True))
    return again


def ended_by_checks(desk: Desk) -> bool:
    """End the session with the failed-checks outcome once too many checks are failed."""
    if desk.failed_checks() > desk.study.max_failed_attention_checks:
        end_session(desk, RaterOutcome.FAILED_CHECKS)
        return True
    return False


class NotAtOnce(Exception):
    """A vote read for ``act_at_once`` needs the rater's lock after all; nothing of it
    was stored."""


def act_at_once(
    *, slug: str, session_token: str | None, act: Callable[[Desk], T], **desk: Any
) -> tuple[Desk, T, SessionState] | None:
    """Run a vote (``act``) on the rater's desk read without the lock and outside a
    transaction, the next pair served by the vote's own statement: three statements
    (the rater, the session, the vote with the next pick and pair), no BEGIN, no COMMIT.

    The vote's statement stands only where the rater's row is still the version read:
    every request that changes a session writes that row (taking the lock is a write,
    studies.desk_sql), so one that changed it meanwhile makes the statement store
    nothing. None, nothing stored, where the request must run under the lock instead:
    the session changed, the vote needs more than its one statement (``NotAtOnce``), its
    answer raced another (an IntegrityError: the locked run finds it stored), a deadlock
    aborted it; and off PostgreSQL."""
    if connection.vendor != "postgresql" or not session_token:
        return None
    # Inside a transaction (a test's, a script's) a savepoint keeps a failed statement's
    # abort to itself.
    scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with scope:
            opened = open_desk(
                slug=slug,
                session_token=session_token,
                lock=False,
                serving=True,
                at_once=True,
                **desk,
            )
            result = act(opened)
            return opened, result, fill(opened)
    except (NotAtOnce, desk_sql.SessionChanged, IntegrityError):
        return None
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", "") != DEADLOCK_DETECTED:
            raise
        return None


# Attempts at a rater's transaction that PostgreSQL aborts to break a deadlock, and the
# SQLSTATE it aborts it with.
DEADLOCK_ATTEMPTS = 4
DEADLOCK_DETECTED = "40P01"


def retrying_deadlocks(run: Callable[[], T]) -> T:
    """Run ``run`` (one whole transaction) again when PostgreSQL aborts it to break a
    deadlock, as PostgreSQL's manual asks of applications: nothing of it was kept, so
    running it again is safe. Picks can deadlock despite holding one comparison at a
    time: a ``FOR UPDATE … LIMIT 1`` keeps the lock on a row it re-checked and then
    passed over (a row another rater had just counted), so three raters serving at once
    can each hold a row another waits for."""
    for attempt in range(1, DEADLOCK_ATTEMPTS):
        try:
            return run()
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", "") != DEADLOCK_DETECTED:
                raise
            time.sleep(random.uniform(0.002, 0.01) * attempt)
    return run()  # the last attempt: whatever it raises goes to the caller


def session_state(*, rater: Rater) -> SessionState:
    """Serve the rater what their session needs, outside a request (simulated raters,
    scripts): its own transactions."""

    def serve_once() -> SessionState:
        with transaction.atomic():
            return fill(open_desk(slug=rater.study.slug, session_token=rater.session_token))

    while True:
        state = retrying_deadlocks(serve_once)
        if not state.short:
            return state


def read_session_state(*, rater: Rater) -> SessionState:
    return read_state(
        open_desk(slug=rater.study.slug, session_token=rater.session_token, lock=False)
    )


def record_load_failure(*, rater: Rater, token: str, detail: str) -> None:
    with transaction.atomic():
        desk = open_desk(slug=rater.study.slug, session_token=rater.session_token, tokens=[token])
        replace(desk, token, detail)


@transaction.atomic
def review_flags(*, flags: Iterable[Flag], decision: str) -> int:
    """A researcher's decision on flags: cleared media are shown again (unless another
    flag still holds them back), kept ones stay withheld. Returns how many were decided."""
    decided = 0
    for record in flags:
        study = record.assignment.study
        record.decision = decision
        record.reviewed_at = timezone.now()
        record.save(update_fields=["decision", "reviewed_at"])
        decided += 1
        if decision != FlagDecision.CLEARED:
            continue
        free = [
            asset
            for asset in record.assets.all()
            if not asset.flags.exclude(pk=record.pk).exclude(decision=FlagDecision.CLEARED).exists()
        ]
        if free:
            withhold(study=study, assets=free, withheld=False)
    return decided
