"""Rate limits for the rater endpoints and the admin login: fixed one-minute windows
counted in Django's cache (exact across processes with VERDICT_CACHE_URL set to Redis;
per process with the default local-memory cache, so up to the worker count times looser).

A human rater cannot answer faster than the study's minimum viewing time allows, so the
per-rater limit only binds on scripts; the per-address limits bound how fast one machine
can create raters or guess passwords. Over a limit the caller gets a 429 with
``Retry-After``; nothing is stored."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class Limit:
    scope: str
    per_minute: int


# A rater's API calls (votes, flags, load failures, session reads): a person answers at
# most about one pair a second.
RATER_CALLS = Limit("rater", 120)
# New arrivals and consent decisions from one address (a lab behind one NAT included).
ARRIVALS = Limit("arrivals", 60)
# Failed admin logins per address and user name.
LOGINS = Limit("login", 10)

# The windows' clock (a test fixes it so a run cannot straddle a minute boundary).
clock = time.time


def client_address(request: HttpRequest) -> str:
    """The caller's address: behind the TLS proxy, the hop the proxy added last."""
    if settings.SECURE_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


def wait_seconds(limit: Limit, who: str, *, count: bool = True) -> int:
    """Seconds until ``who`` may call again under ``limit`` (0: now). ``count=False``
    only looks (for a login, counted when it fails)."""
    if not settings.RATE_LIMITS:
        return 0
    now = clock()
    window = int(now // 60)
    key = f"verdict:rate:{limit.scope}:{who}:{window}"
    if count:
        cache.add(key, 0, 120)
        try:
            used = cache.incr(key)
        except ValueError:  # evicted between add and incr: count from here
            cache.set(key, 1, 120)
            used = 1
    else:
        used = int(cache.get(key, 0))
    over = used > limit.per_minute if count else used >= limit.per_minute
    return max(1, int(60 - now % 60) + 1) if over else 0
