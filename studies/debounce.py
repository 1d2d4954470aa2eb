"""Once per window, across processes: the first caller in a window of ``seconds`` gets
True (the shared cache's ``add`` decides; exact with Redis, per process with the
local-memory cache).

Each process also remembers the windows it has seen, won or lost (a loss reads when
the winner's window ends), and asks the cache again only after that. A busy process
then makes one or two cache calls per window and key instead of one per vote: with
Redis, that took three of a vote's five round trips to Redis away. Every call after a
window's end still asks, so debounced work is never skipped for a call it should see.
"""

import time

from django.core.cache import cache

# key: the wall-clock time (time.time()) until which this process need not ask again.
_seen: dict[str, float] = {}
# Shaved off a window another process holds: clocks of two processes may differ a little.
SKEW_S = 0.5


def first_in_window(key: str, seconds: float) -> bool:
    if seconds <= 0:  # no window: every call goes through
        return True
    now = time.time()
    if _seen.get(key, 0.0) > now:
        return False
    until = now + seconds
    if cache.add(key, until, seconds):
        _seen[key] = until
        return True
    held = cache.get(key)
    _seen[key] = (float(held) - SKEW_S) if isinstance(held, int | float) else now
    return False


def clear() -> None:
    """Forget the windows this process has seen (tests, which clear the cache too)."""
    _seen.clear()
