"""Signals of the metrics app; metrics imports no analysis (DESIGN.md)."""

from django.dispatch import Signal

# Sent with ``study_id`` after metric values or per-asset measures of a study changed:
# what was built from them (the stored analysis report) is now stale.
metrics_changed = Signal()
