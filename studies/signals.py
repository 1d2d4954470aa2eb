"""Signals other apps listen to; studies imports none of them (DESIGN.md). And how to
announce after a commit."""

import functools
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.dispatch import Signal

# Sent after a vote's transaction commits, with ``study_id``: what was built from a
# study's votes (the stored analysis report) is now stale.
votes_recorded = Signal()


def after_commit(func: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Call ``func(*args, **kwargs)`` once the transaction commits. What it stored is
    stored by then, so a failure here (a broker that cannot take a task) is logged and
    never raised: the request must still say it succeeded, not answer a 500 for work
    that was kept."""

    # Named after ``func``: Django's log names a failed callback by its __qualname__,
    # which a functools.partial lacks.
    @functools.wraps(func)
    def call() -> None:
        func(*args, **kwargs)

    transaction.on_commit(call, robust=True)
