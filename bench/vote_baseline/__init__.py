"""The bare vote baseline of bench/load_votes.py: a minimal Django project, built exactly as
reference/VOTE-PATH.md §5 describes its "plain Django view + ORM vote".

One app, no middleware, no DRF, persistent connections. ``POST /vote`` stores the vote, then
serves the next free assignment (``SELECT … FOR UPDATE SKIP LOCKED`` and an UPDATE) in one
transaction: 5 round trips (BEGIN, INSERT, SELECT, UPDATE, COMMIT). It is what Verdict's
vote path is measured against, not part of Verdict.
"""
