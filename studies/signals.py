"""Signals other apps listen to; studies imports none of them (DESIGN.md)."""

from django.dispatch import Signal

# Sent after a vote's transaction commits, with ``study_id``: what was built from a
# study's votes (the stored analysis report) is now stale.
votes_recorded = Signal()
