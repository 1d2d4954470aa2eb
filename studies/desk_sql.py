"""The rater path's reads and its pick, written out in SQL.

A vote opens the rater's desk (the rater's row with its study, and the pairs the request
works on) and serves the next pair. Built with the ORM, compiling those three queries cost
more CPU than PostgreSQL spent running them, and instantiating five models per pair
(select_related) more still: about two thirds of a vote's 24 ms (cProfile, 8 systems ×
64 prompts, bench/load_votes.py's study). Here each statement is built once per process
from the models' metadata (so a new column needs no edit) and run with cursor.execute;
rows become model instances through ``Model.from_db`` with the same converters the ORM
applies, and a pair's prompt, criterion and media come from studies.content's cache
instead of joins.

On PostgreSQL the statements run as prepared statements: parsing and planning the pick
cost PostgreSQL more than running it (0.3 ms against 0.2 ms), once per statement and
connection this way. Django's own cursors bind parameters on the client and never
prepare; these go through a psycopg server-binding cursor on the same connection (same
transaction, Django's error mapping and query log).

The ORM forms stay as the reference: ``scheduler.pick`` is what ``pick`` must agree
with, and tests/unit/test_desk_sql.py checks both on the same data, on SQLite and on
PostgreSQL.
"""

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, Literal, TypeVar

from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.base import ModelState

from studies.models import (
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Comparison,
    Rater,
    Study,
    Vote,
)

M = TypeVar("M", bound=Model)
Converter = tuple[int, list[Callable[..., Any]], Any]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model: type[Model]) -> str:
    return _q(model._meta.db_table)


@cache
def _fields(model: type[Model], skip: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    return tuple(f for f in model._meta.concrete_fields if f.name not in skip)


def _columns(model: type[Model], alias: str, skip: frozenset[str] = frozenset()) -> str:
    return ", ".join(f"{alias}.{_q(f.column)}" for f in _fields(model, skip))


@cache
def _converters(model: type[Model], skip: frozenset[str], vendor: str) -> list[Converter]:
    """The ORM's converters for the model's columns (JSON, datetimes on SQLite, UUIDs),
    by position; ``vendor`` keys the cache by database."""
    out: list[Converter] = []
    for i, field in enumerate(_fields(model, skip)):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            out.append((i, found, column))
    return out


@cache
def _attnames(model: type[Model], skip: frozenset[str]) -> tuple[str, ...]:
    return tuple(f.attname for f in _fields(model, skip))


def _build(
    model: type[M],
    values: Sequence[Any],
    skip: frozenset[str] = frozenset(),
    db: BaseDatabaseWrapper | None = None,
) -> M:
    """A model instance from its columns in ``concrete_fields`` order (less ``skip``,
    which are deferred: reading one loads it), with the values the ORM would give it
    (its converters applied). Made as ``Model.from_db`` leaves it, but without running
    ``__init__``, which costs five times as much per row; these models have no init
    signal receivers (tests/unit/test_desk_sql.py checks the instances equal the
    ORM's). ``db``: the connection, looked up once by a caller building many rows (each
    look-up through ``django.db.connection`` goes through a context-local proxy)."""
    db = db or connections[DEFAULT_DB_ALIAS]
    row = list(values)
    for i, found, column in _converters(model, skip, db.vendor):
        value = row[i]
        for convert in found:
            value = convert(value, column, db)
        row[i] = value
    instance = model.__new__(model)
    instance.__dict__.update(zip(_attnames(model, skip), row, strict=True))
    state = ModelState()
    state.adding = False
    state.db = db.alias
    instance._state = state
    return instance


def _result(cursor: Any, fetch: str) -> Any:
    if fetch == "one":
        return cursor.fetchone()
    if fetch == "all":
        return cursor.fetchall()
    return cursor.rowcount


@cache
def _encoded(sql: str) -> bytes:
    # The same bytes object every call: psycopg looks the statement up by its text, and a
    # bytes object keeps its hash (a str query is encoded and hashed afresh each time).
    return sql.encode()


def _server_cursor(db: BaseDatabaseWrapper) -> Any:
    """A server-binding psycopg cursor on the connection, kept for the connection's life
    (a new cursor builds its own adapters map: a twentieth of a vote's CPU).

    Its timestamps are read by psycopg's own loader, in C, where the session's time zone
    is UTC: Django's (a Python subclass, which sets the zone the session already has)
    cost 12 µs a value, five values a vote. The same instants, in UTC."""
    import psycopg
    from psycopg.types.datetime import TimestamptzLoader

    raw = db.connection
    kept = getattr(db, "_desk_cursor", None)
    if kept is None or kept.connection is not raw or kept.closed:
        kept = db._desk_cursor = psycopg.Cursor(raw)  # type: ignore[attr-defined]
        if db.timezone_name == "UTC" and raw.info.timezone.utcoffset(None) == timedelta(0):
            kept.adapters.register_loader("timestamptz", TimestamptzLoader)
    return kept


def execute(sql: str, params: Sequence[Any], *, fetch: Literal["one", "all", "count"]) -> Any:
    """Run one statement of the rater path: its first row, all rows, or the row count."""
    db = connections[DEFAULT_DB_ALIAS]  # one context-local look-up, not one per attribute
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return _result(cursor, fetch)
    db.ensure_connection()
    started = time.monotonic()
    with db.wrap_database_errors:
        cursor = _server_cursor(db)
        cursor.execute(_encoded(sql), params, prepare=True)
        found = _result(cursor, fetch)
    if db.queries_logged:
        db.queries_log.append(
            {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return found


def array_literal(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of these ids, for a parameter cast to an array type
    (``%s::bigint[]``): psycopg's own list dumper cost 80 µs a list, a tenth of a vote's
    CPU in psycopg; a string costs nothing to send. ``int`` first, so that nothing but
    digits reaches the literal."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


# The texts a rater reads on the entry pages and the answers to the closing questions:
# never read on a vote, and the longest columns of the two rows. Left deferred.
RATER_SKIP = frozenset({"questionnaire", "user_agent"})
STUDY_SKIP = frozenset({"instructions", "consent", "content_warning"})


@cache
def _rater_sql(vendor: str, lock: bool, more: str = "") -> str:
    """The rater with its study, the assignment of the client id's vote and the rater
    row's version (PostgreSQL's ``xmin``: the transaction that last wrote it; NULL
    elsewhere). On PostgreSQL the lock is a write: the row gets a new version, so that
    a vote read without the lock (``assignments.act_at_once``) sees that the session
    changed meanwhile, which a ``FOR UPDATE`` alone would not show it. ``more``: columns
    to read after those (without the lock)."""
    rater, study, vote = _table(Rater), _table(Study), _table(Vote)
    token, slug = f"r.{_q('session_token')} = %s", f"s.{_q('slug')} = %s"
    client = (
        f"(SELECT v.{_q('assignment_id')} FROM {vote} v WHERE v.{_q('client_id')} = %s LIMIT 1)"
    )
    version = "r.xmin::text" if vendor == "postgresql" else "NULL"
    columns = f"{_columns(Rater, 'r', RATER_SKIP)}, {_columns(Study, 's', STUDY_SKIP)}"
    if lock and vendor == "postgresql":
        live_from = _q("live_from")
        return (
            f"UPDATE {rater} r SET {live_from} = r.{live_from} FROM {study} s "
            f"WHERE s.{_q('id')} = r.{_q('study_id')} AND {token} AND {slug} "
            f"RETURNING {columns}, {client}, {version}"
        )
    return (
        f"SELECT {columns}, {client}, {version}{more} FROM {rater} r "
        f"INNER JOIN {study} s ON s.{_q('id')} = r.{_q('study_id')} "
        f"WHERE {token} AND {slug}"
    )


@dataclass(frozen=True)
class RaterRead:
    """What ``rater_with_study`` read: the rater (its study attached), the assignment
    that holds a vote with the client id (None if none) and the row's version."""

    rater: Rater
    client_vote: int | None
    version: str | None


def rater_with_study(
    *, slug: str, session_token: str, client_id: Any, lock: bool
) -> RaterRead | None:
    """The rater of this session token in the study of this slug (its row locked when
    ``lock``), its study attached, the assignment that holds a vote with ``client_id``
    and the row's version: one statement. None: no such rater."""
    client = Vote._meta.get_field("client_id").get_db_prep_value(client_id, connection)
    sql = _rater_sql(connection.vendor, lock)
    # The placeholders in their order: the client id's is in the SELECT list, or in the
    # UPDATE's RETURNING, after its WHERE.
    params = (
        [session_token, slug, client] if sql.startswith("UPDATE") else [client, session_token, slug]
    )
    found = execute(sql, params, fetch="one")
    return None if found is None else _rater_read(found)


def _rater_read(found: Sequence[Any]) -> RaterRead:
    """A RaterRead from the first columns of ``_rater_sql``'s row."""
    n = len(_fields(Rater, RATER_SKIP))
    m = len(_fields(Study, STUDY_SKIP))
    rater = _build(Rater, found[:n], RATER_SKIP)
    rater._state.fields_cache["study"] = _build(Study, found[n : n + m], STUDY_SKIP)
    client_vote, version = found[n + m], found[n + m + 1]
    return RaterRead(rater, int(client_vote) if client_vote is not None else None, version)


# Never read on the rater's path, and a tz-aware timestamp costs more to load than the rest
# of the row: left deferred.
ROW_SKIP = frozenset({"served_at", "expires_at"})


@cache
def _rows_sql(vendor: str) -> str:
    assignment, vote = _table(Assignment), _table(Vote)
    return (
        f"SELECT {_columns(Assignment, 'a', ROW_SKIP)}, v.{_q('answer')}, v.{_q('id')} "
        f"FROM {assignment} a LEFT OUTER JOIN {vote} v "
        f"ON v.{_q('assignment_id')} = a.{_q('id')} AND v.{_q('is_current')} "
        f"WHERE a.{_q('rater_id')} = %s ORDER BY a.{_q('id')}"
    )


def _row_with_vote(values: Sequence[Any], db: BaseDatabaseWrapper) -> Assignment:
    n = len(_fields(Assignment, ROW_SKIP))
    row = _build(Assignment, values[:n], ROW_SKIP, db)
    row.current_answer = values[n]  # type: ignore[attr-defined]
    row.current_vote = values[n + 1]  # type: ignore[attr-defined]
    return row


def session_rows(*, rater_id: int) -> list[Assignment]:
    """Every pair of the rater's session in serving order, each with ``current_answer``
    and ``current_vote`` (its current vote's answer and id, or None): one statement. A
    vote is current for at most one row per assignment (a database constraint), so the
    join cannot repeat a pair. Related rows are not attached here."""
    found = execute(_rows_sql(connection.vendor), [rater_id], fetch="all")
    db = connections[DEFAULT_DB_ALIAS]
    return [_row_with_vote(values, db) for values in found]


def is_live(row: Assignment, tokens: Collection[str], named_screens: Collection[str]) -> bool:
    """The pairs a request reads as rows: those on screen, the attention checks (their
    answers decide whether the session goes on), and the screens the request names. The
    rest of the session it knows from the rater's tally (studies.tally)."""
    return (
        row.status == AssignmentStatus.SERVED
        or row.kind == AssignmentKind.ATTENTION
        or row.token in tokens
        or (row.screen != "" and row.screen in named_screens)
    )


def _live_ids(named: int, rater_id: str, live_from: str) -> str:
    """The ids of the pairs a request reads (``is_live``) as four index look-ups
    (assignment_served from the rater's live_from on, assignment_attention, the token's,
    assignment_screen), so that the statement reads the live pairs only, however long
    the session: ``rater_id`` and ``live_from`` are SQL (a placeholder, or the rater
    row's columns), each named token is a placeholder, twice. One placeholder each, not
    an array: with an array of unknown length PostgreSQL judged its generic plan dearer
    than a fresh one and planned the statement on every call (0.3 ms, more than running
    it)."""
    assignment = _table(Assignment)
    rater, token, screen = _q("rater_id"), _q("token"), _q("screen")
    ids = (
        f"SELECT a.{_q('id')} FROM {assignment} a WHERE a.{rater} = {rater_id} "
        f"AND a.{_q('status')} = '{AssignmentStatus.SERVED.value}' "
        f"AND a.{_q('id')} >= {live_from} "
        f"UNION SELECT a.{_q('id')} FROM {assignment} a WHERE a.{rater} = {rater_id} "
        f"AND a.{_q('kind')} = '{AssignmentKind.ATTENTION.value}'"
    )
    if named:
        tokens = ", ".join(["%s"] * named)
        ids += (
            f" UNION SELECT a.{_q('id')} FROM {assignment} a "
            f"WHERE a.{token} IN ({tokens}) AND a.{rater} = {rater_id} "
            # The named screens first (an init plan), then their pairs by the screen index.
            f"UNION SELECT a.{_q('id')} FROM {assignment} a WHERE a.{screen} <> '' "
            f"AND a.{rater} = {rater_id} AND a.{screen} = ANY(ARRAY(SELECT n.{screen} "
            f"FROM {assignment} n WHERE n.{token} IN ({tokens}) AND n.{rater} = {rater_id}))"
        )
    return ids


def _with_vote(ids: str) -> str:
    """FROM the pairs of ``ids`` (as ``m``) with their current vote (as ``v``)."""
    assignment, vote = _table(Assignment), _table(Vote)
    return (
        f"FROM {assignment} m LEFT OUTER JOIN LATERAL (SELECT c.{_q('answer')}, c.{_q('id')} "
        f"FROM {vote} c WHERE c.{_q('assignment_id')} = m.{_q('id')} AND c.{_q('is_current')} "
        f"LIMIT 1) v ON true WHERE m.{_q('id')} IN ({ids})"
    )


@cache
def _session_sql(vendor: str, named: int) -> str:
    return (
        f"SELECT {_columns(Assignment, 'm', ROW_SKIP)}, v.{_q('answer')}, v.{_q('id')} "
        f"{_with_vote(_live_ids(named, '%s', '%s'))} ORDER BY m.{_q('id')}"
    )


def _session_params(names: Sequence[str], rater_id: int, live_from: int) -> list[Any]:
    params: list[Any] = [rater_id, live_from, rater_id]
    if names:
        params += [*names, rater_id, rater_id, *names, rater_id]
    return params


def session(*, rater_id: int, tokens: Collection[str] = (), live_from: int = 0) -> list[Assignment]:
    """The pairs of the rater's session a request reads (``is_live``: those on screen,
    the attention checks and the screens named by ``tokens``), in serving order and as
    ``session_rows`` gives them: one statement, which does not grow with the session.
    ``live_from``: the rater's bound (``Rater.live_from``), below which none is served."""
    if connection.vendor != "postgresql":
        rows = session_rows(rater_id=rater_id)
        named = {row.screen for row in rows if row.token in tokens and row.screen}
        return [row for row in rows if is_live(row, tokens, named)]
    names = sorted(set(tokens))
    params = _session_params(names, rater_id, live_from)
    found = execute(_session_sql(connection.vendor, len(names)), params, fetch="all")
    db = connections[DEFAULT_DB_ALIAS]
    return [_row_with_vote(values, db) for values in found]


@cache
def _rater_and_session_sql(vendor: str, named: int) -> str:
    """``_rater_sql`` (no lock) with ``session``'s rows in one more column, a JSON array
    of arrays (the same columns, in the same order)."""
    columns = ", ".join(f"m.{_q(f.column)}" for f in _fields(Assignment, ROW_SKIP))
    ids = _live_ids(named, f"r.{_q('id')}", f"r.{_q('live_from')}")
    rows = (
        f"(SELECT json_agg(json_build_array({columns}, v.{_q('answer')}, v.{_q('id')}) "
        f"ORDER BY m.{_q('id')}) {_with_vote(ids)})"
    )
    return _rater_sql(vendor, lock=False, more=f", {rows}")


def rater_and_session(
    *, slug: str, session_token: str, client_id: Any, tokens: Collection[str] = ()
) -> tuple[RaterRead | None, list[Assignment]]:
    """``rater_with_study`` (without the lock) and the rater's ``session`` in one
    statement, read in one snapshot: on PostgreSQL (elsewhere two)."""
    if connection.vendor != "postgresql":
        read = rater_with_study(
            slug=slug, session_token=session_token, client_id=client_id, lock=False
        )
        if read is None:
            return None, []
        return read, session(rater_id=read.rater.pk, tokens=tokens, live_from=read.rater.live_from)
    names = sorted(set(tokens))
    client = Vote._meta.get_field("client_id").get_db_prep_value(client_id, connection)
    sql = _rater_and_session_sql(connection.vendor, len(names))
    found = execute(sql, [client, *names, *names, session_token, slug], fetch="one")
    if found is None:
        return None, []
    read = _rater_read(found)
    db = connections[DEFAULT_DB_ALIAS]
    return read, [_row_with_vote(values, db) for values in found[-1] or []]


def _open_filter(alias: str, *, by_group: bool, avoid: int) -> str:
    """The comparisons of a study this rater has not had (by the group of prompt and
    systems when all criteria share a screen), whose media may be shown, leaving out
    ``avoid`` prompts; the parameters: study, rater, [criterion], avoided prompts."""
    assignment, comparison = _table(Assignment), _table(Comparison)
    c = alias
    if by_group:
        had = (
            f"SELECT 1 FROM {assignment} h INNER JOIN {comparison} hc "
            f"ON hc.{_q('id')} = h.{_q('comparison_id')} "
            f"WHERE h.{_q('rater_id')} = %s AND hc.{_q('prompt_id')} = {c}.{_q('prompt_id')} "
            f"AND hc.{_q('system_a_id')} = {c}.{_q('system_a_id')} "
            f"AND hc.{_q('system_b_id')} = {c}.{_q('system_b_id')}"
        )
    else:
        had = (
            f"SELECT 1 FROM {assignment} h WHERE h.{_q('rater_id')} = %s "
            f"AND h.{_q('comparison_id')} = {c}.{_q('id')}"
        )
    sql = f"{c}.{_q('study_id')} = %s AND {c}.{_q('available')} AND NOT EXISTS ({had})"
    if by_group:
        sql += f" AND {c}.{_q('criterion_id')} = %s"
    if avoid and connection.vendor == "postgresql":
        # One array parameter, whatever the count: the statement's text never changes, so
        # it is prepared once per connection (a list of %s made a new one per length).
        sql += f" AND NOT ({c}.{_q('prompt_id')} = ANY(%s::bigint[]))"
    elif avoid:
        sql += f" AND {c}.{_q('prompt_id')} NOT IN ({', '.join(['%s'] * avoid)})"
    return sql


def _order_key(alias: str, adaptive: bool) -> str:
    """What the pick orders by: the load, or under adaptive selection the load weighted
    by the comparison's stride (the expressions of the two pick indexes)."""
    load = f"{alias}.{_q('shown_a_left')} + {alias}.{_q('shown_b_left')}"
    return f"(({load}) + 1) * {alias}.{_q('stride')}" if adaptive else load


@cache
def _pick_sql(
    vendor: str, by_group: bool, avoid: int, lowest_only: bool, wait: bool, adaptive: bool
) -> str:
    comparison = _table(Comparison)
    a_left, b_left = _q("shown_a_left"), _q("shown_b_left")
    load = _order_key("c", adaptive)
    sql = (
        f"SELECT c.{_q('id')} AS pick_id, c.{_q('prompt_id')} AS pick_prompt, "
        f"c.{_q('system_a_id')} AS pick_a, c.{_q('system_b_id')} AS pick_b, "
        # Counterbalance: the side shown less often goes left; on a tie, the row's shuffle.
        f"CASE WHEN c.{a_left} < c.{b_left} OR (c.{a_left} = c.{b_left} "
        f"AND c.{_q('shuffle')} % 2 = 0) THEN 1 ELSE 0 END AS pick_a_left "
        f"FROM {comparison} c WHERE {_open_filter('c', by_group=by_group, avoid=avoid)}"
    )
    if lowest_only:
        sql += (
            # The first row in index order, not MIN(): the scan stops at the first one.
            f" AND {load} = (SELECT {_order_key('l', adaptive)} FROM {comparison} l "
            f"WHERE {_open_filter('l', by_group=by_group, avoid=avoid)} "
            f"ORDER BY {_order_key('l', adaptive)} LIMIT 1)"
        )
    # The order the comparison_load_pick (adaptive: comparison_stride_pick) index serves.
    sql += f" ORDER BY {load}, c.{_q('shuffle')} LIMIT 1"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE OF c" + ("" if wait else " SKIP LOCKED")
    return sql.replace("%", "%%").replace("%%s", "%s")


def pick(
    *,
    rater_id: int,
    study_id: int,
    criterion_id: int | None,
    avoid_prompts: Collection[int] = (),
    lowest_only: bool = True,
    wait: bool = False,
    adaptive: bool = False,
) -> tuple[str, list[Any]]:
    """The next comparison for this rater as one locking SELECT and its parameters, not
    yet run: the columns pick_id, pick_prompt, pick_a, pick_b, pick_a_left (1 or 0).
    The same rules as ``scheduler.pick``, which documents them."""
    avoid = sorted(avoid_prompts)
    by_group = criterion_id is not None
    as_array = connection.vendor == "postgresql"
    count = (1 if avoid else 0) if as_array else len(avoid)
    sql = _pick_sql(connection.vendor, by_group, count, lowest_only, wait, adaptive)
    avoided: list[Any] = ([array_literal(avoid)] if avoid else []) if as_array else avoid
    where: list[Any] = [study_id, rater_id, *([criterion_id] if by_group else []), *avoided]
    return sql, where * (2 if lowest_only else 1)


@cache
def _inserted_fields(model: type[Model]) -> tuple[Any, ...]:
    """The columns an INSERT names: all but the key, which the database draws."""
    return tuple(f for f in _fields(model) if not f.primary_key)


@cache
def _insert_sql(model: type[Model], vendor: str, rows: int) -> str:
    fields = _inserted_fields(model)
    columns = ", ".join(_q(f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {_table(model)} ({columns}) VALUES {', '.join([one] * rows)} "
        f"RETURNING {_q(model._meta.pk.column)}"
    )


def _insert_params(objs: Sequence[Model]) -> list[Any]:
    fields = _inserted_fields(type(objs[0]))
    # The connection itself: each look-up through the django.db.connection proxy costs a
    # context-local read, and the fields' preparations make several per value.
    db = connections[DEFAULT_DB_ALIAS]
    params: list[Any] = []
    for obj in objs:
        for field in fields:
            value = field.pre_save(obj, add=True)
            params.append(field.get_db_prep_save(value, db))
    return params


def _inserted(objs: Sequence[M], keys: Sequence[Any]) -> list[M]:
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)


def insert(objs: Sequence[M]) -> list[M]:
    """INSERT new instances of one model in one statement and set their primary keys,
    as ``bulk_create`` does (defaults and ``pre_save``, such as ``auto_now_add``,
    applied) without compiling an InsertQuery."""
    sql = _insert_sql(type(objs[0]), connection.vendor, len(objs))
    found = execute(sql, _insert_params(objs), fetch="all")
    return _inserted(objs, [row[0] for row in found])


@dataclass(frozen=True)
class Take:
    """A pick and the UPDATE that counts it on its comparison, not yet run: ``pick`` a
    SELECT, ``update`` the statement that reads it as ``p`` and returns TAKEN columns
    (the last two named ``load`` and ``a_left``), ``params`` the two's parameters in that
    order (studies.assignments builds it). ``place``: with a vote (``insert_moving``),
    also insert the pair the one comparison taken is served as, this assignment with its
    comparison, prompt, criterion and media filled in (``_place_sql``)."""

    pick: str
    update: str
    params: tuple[Any, ...]
    place: Assignment | None = None

    def sql(self) -> str:
        # Materialized, so the locking pick runs exactly once whatever plan the UPDATE gets.
        return f"WITH p AS MATERIALIZED ({self.pick}) {self.update}"


# What a take's UPDATE returns of each comparison taken: id, prompt, criterion, system a,
# system b, its load and whether a goes left.
TAKEN = 7

# What a placed pair takes from the comparison taken (t) and the media chosen for it (m).
PLACED = {
    "comparison": "t.id",
    "prompt": "t.prompt_id",
    "criterion": "t.criterion_id",
    "left_asset": "CASE WHEN t.a_left THEN m.a_id ELSE m.b_id END",
    "right_asset": "CASE WHEN t.a_left THEN m.b_id ELSE m.a_id END",
}


@cache
def _place_sql(vendor: str) -> str:
    """Two CTEs after ``taken``: ``media``, the outputs of the two systems for the prompt
    with a seed in common, in seed order, as studies.content's ``PromptMedia.pairs``
    lists them; and ``placed``, the new pair showing the ``(load - 1) % n``-th of them,
    as ``assignments._serve_comparison`` chooses (tests/unit/test_desk_sql.py holds the
    two to agree)."""
    asset, kind, withheld = _table(Asset), _q("kind"), _q("withheld")
    prompt, system, seed = _q("prompt_id"), _q("system_id"), _q("seed")

    def output(alias: str, side: str) -> str:
        return (
            f"{alias}.{prompt} = t.prompt_id AND {alias}.{system} = t.{side} "
            f"AND {alias}.{kind} = '{AssetKind.OUTPUT.value}' AND NOT {alias}.{withheld}"
        )

    media = (
        f"SELECT x.{_q('id')} AS a_id, y.{_q('id')} AS b_id, "
        f"row_number() OVER (ORDER BY x.{seed}) - 1 AS i, count(*) OVER () AS n "
        f"FROM taken t JOIN {asset} x ON {output('x', 'system_a_id')} "
        f"JOIN {asset} y ON {output('y', 'system_b_id')} AND y.{seed} = x.{seed}"
    )
    fields = _inserted_fields(Assignment)
    columns = ", ".join(_q(f.column) for f in fields)
    values = ", ".join(PLACED.get(f.name, "%s") for f in fields)
    placed = (
        f"INSERT INTO {_table(Assignment)} ({columns}) SELECT {values} FROM taken t "
        f"JOIN media m ON m.i = (t.load - 1) %% m.n "
        f"RETURNING {_q('id')}, {_q('left_asset_id')}, {_q('right_asset_id')}"
    )
    return f"media AS ({media}), placed AS ({placed})"


def _place_params(place: Assignment) -> list[Any]:
    fields = _inserted_fields(Assignment)
    return [
        value
        for field, value in zip(fields, _insert_params([place]), strict=True)
        if field.name not in PLACED
    ]


@cache
def _insert_moving_sql(
    model: type[Model],
    vendor: str,
    rows: int,
    moved: int,
    take: tuple[str, str] | None,
    place: bool = False,
) -> str:
    # The rows come back in VALUES order: their keys are drawn in that order.
    pk = _q(model._meta.pk.column)
    sql = (
        f"WITH moved AS ({_move_sql(vendor, moved)} RETURNING 1), "
        f"added AS ({_insert_sql(model, vendor, rows)}), "
        f"tallied AS ({_tally_sql(vendor)} RETURNING 1)"
    )
    # The rater's row is written (and waited for) before the pairs and comparisons are,
    # the order a transaction holding the rater's lock writes them in. Where it changed
    # since it was read, the statement fails as a whole and nothing is stored.
    found = f"FROM added WHERE {UNCHANGED}"
    if take is None:
        return sql + f" SELECT {pk}, (SELECT count(*) FROM moved) {found} ORDER BY {pk}"
    # The votes' rows, the rows taken and the pair placed, each after a tag, in one result.
    pick, update = take
    sql += f", p AS MATERIALIZED ({pick}), taken AS ({update})"
    sql += f", {_place_sql(vendor)}" if place else ""
    sql += (
        f" SELECT 0, {pk}, (SELECT count(*) FROM moved), {_nulls(TAKEN - 2)} {found} "
        "UNION ALL SELECT 1, taken.* FROM taken"
    )
    if place:
        sql += f" UNION ALL SELECT 2, placed.*, {_nulls(TAKEN - 3)} FROM placed"
    return sql + " ORDER BY 1, 2"


def _nulls(count: int) -> str:
    return ", ".join(["NULL"] * count)


# The vote's statement stands only if the rater's row is the version the vote was decided
# on: otherwise verdict_session_changed() (migration 0020) fails it with SQLSTATE 40001.
UNCHANGED = (
    "CASE WHEN (SELECT count(*) FROM tallied) = 1 THEN true ELSE verdict_session_changed() END"
)
SESSION_CHANGED = "40001"


class SessionChanged(Exception):
    """The rater's row changed between the read a vote was decided on and its statement,
    which stored nothing (``insert_moving``)."""


@cache
def _tally_sql(vendor: str) -> str:
    """Write the rater's tally and live_from; on PostgreSQL only where the row is still
    the version read (``xmin``, rater_with_study's version)."""
    sql = (
        f"UPDATE {_table(Rater)} SET {_q('tally')} = %s, {_q('live_from')} = %s "
        f"WHERE {_q('id')} = %s"
    )
    return sql + " AND xmin = %s::xid" if vendor == "postgresql" else sql


def _tally_params(
    rater_id: int, tally: dict[str, Any], live_from: int, version: str | None
) -> list[Any]:
    field = Rater._meta.get_field("tally")
    params = [field.get_db_prep_save(tally, connections[DEFAULT_DB_ALIAS]), live_from, rater_id]
    return params + [version] if connection.vendor == "postgresql" else params


@dataclass(frozen=True)
class Moved:
    """What ``insert_moving`` did: the instances stored, how many assignments moved, the
    rows taken (None without a take) and the pair placed, as (the take's ``place``, its
    key now set; its left medium; its right medium), None where none was."""

    stored: list[Any]
    moved: int
    taken: list[tuple[Any, ...]] | None = None
    placed: tuple[Assignment, int, int] | None = None


def insert_moving(
    objs: Sequence[Model],
    pks: Sequence[int],
    *,
    source: str,
    target: str,
    rater_id: int,
    tally: dict[str, Any],
    live_from: int,
    version: str | None,
    take: Take | None = None,
) -> Moved:
    """``insert`` these instances, ``move_status`` these assignments, set the rater's
    tally (studies.tally) and ``live_from``, and run ``take``: one statement on
    PostgreSQL (a vote, the move of its pair, the session's new sum, the next pick and
    the pair it is served as), three or four elsewhere (without placing the pair).
    ``version``: the rater row's as read (rater_with_study); where the row changed
    since, nothing is stored and SessionChanged is raised."""
    params = _tally_params(rater_id, tally, live_from, version)
    if connection.vendor != "postgresql" or not pks:
        if not execute(_tally_sql(connection.vendor), params, fetch="count"):
            raise SessionChanged("The rater's session changed since it was read.")
        moved = move_status(pks, source=source, target=target) if pks else 0
        stored = insert(objs)
        taken = None if take is None else list(execute(take.sql(), take.params, fetch="all"))
        return Moved(stored, moved, taken)
    shape = None if take is None else (take.pick, take.update)
    placing = take is not None and take.place is not None
    sql = _insert_moving_sql(type(objs[0]), connection.vendor, len(objs), len(pks), shape, placing)
    params = [target, *pks, source, *_insert_params(objs), *params]
    if take is not None:
        params += take.params
        params += _place_params(take.place) if take.place is not None else []
    try:
        found = execute(sql, params, fetch="all")
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) == SESSION_CHANGED:
            raise SessionChanged(str(error)) from error
        raise
    if take is None:
        return Moved(_inserted(objs, [row[0] for row in found]), int(found[0][1]))
    votes = [row for row in found if row[0] == 0]
    taken = [tuple(row[1:]) for row in found if row[0] == 1]
    stored = _inserted(objs, [row[1] for row in votes])
    placed = None
    row = next((row for row in found if row[0] == 2), None)
    if row is not None and take.place is not None:
        placed = (_inserted([take.place], [row[1]])[0], int(row[2]), int(row[3]))
    return Moved(stored, int(votes[0][2]), taken, placed)


@cache
def _move_sql(vendor: str, rows: int) -> str:
    status = _q("status")
    return (
        f"UPDATE {_table(Assignment)} SET {status} = %s "
        f"WHERE {_q('id')} IN ({', '.join(['%s'] * rows)}) AND {status} = %s"
    )


def move_status(pks: Sequence[int], *, source: str, target: str) -> int:
    """Move these assignments from status ``source`` to ``target``; returns how many."""
    sql = _move_sql(connection.vendor, len(pks))
    return int(execute(sql, [target, *pks, source], fetch="count"))
