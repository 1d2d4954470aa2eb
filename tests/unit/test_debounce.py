"""studies.debounce: once per window across processes, and at most a call or two to the
shared cache per window and process, never skipping a call after a window's end."""

from typing import Any

import pytest
from django.core.cache import cache

from studies import debounce


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(debounce.time, "time", lambda: now[0])
    return now


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    add, get = cache.add, cache.get

    def counted_add(key: str, *args: Any, **kwargs: Any) -> bool:
        seen.append("add")
        return bool(add(key, *args, **kwargs))

    def counted_get(key: str, *args: Any, **kwargs: Any) -> Any:
        seen.append("get")
        return get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "add", counted_add)
    monkeypatch.setattr(cache, "get", counted_get)
    return seen


def test_a_busy_process_asks_the_cache_once_a_window(clock: list[float], calls: list[str]) -> None:
    won = [debounce.first_in_window("k", 10) for _ in range(100)]
    assert won == [True] + [False] * 99
    assert calls == ["add"]
    clock[0] += 10.5  # the window is over: the next call asks again, and wins
    assert debounce.first_in_window("k", 10) is True
    assert calls == ["add", "add"]


def test_a_process_that_lost_waits_for_the_winner_s_window_only(
    clock: list[float], calls: list[str]
) -> None:
    assert debounce.first_in_window("k", 10)  # "another process" won at t = 0
    debounce.clear()  # this process has seen nothing
    clock[0] += 4
    assert [debounce.first_in_window("k", 10) for _ in range(50)] == [False] * 50
    assert calls == ["add", "add", "get"]  # one look, then it remembers until t = 9.5
    clock[0] += 5.6  # t = 9.6: past the winner's window (less the skew): ask again
    cache.delete("k")  # the cache let the winner's key expire at t = 10
    assert debounce.first_in_window("k", 10) is True


def test_no_window_lets_every_call_through(calls: list[str]) -> None:
    assert all(debounce.first_in_window("k", 0) for _ in range(3))
    assert calls == []


@pytest.mark.django_db
def test_votes_schedule_one_report_refresh_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis import reports, tasks

    queued: list[Any] = []
    monkeypatch.setattr(tasks.refresh_reports, "apply_async", lambda **kw: queued.append(kw))
    for _ in range(30):
        reports.schedule_refresh(study_id=7)
    assert len(queued) == 1 and queued[0]["kwargs"] == {"study_id": 7}
