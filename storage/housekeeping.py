"""Housekeeping the leader does once a day: forgetting Events API deliveries too old to be retried."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from storage.models import ProcessedEvent

# Slack retries an event three times within about five minutes (slack-platform.md); a day is far beyond that.
EVENT_MEMORY = timedelta(days=1)


def prune_processed_events(session: Session, *, now: datetime, keep: timedelta = EVENT_MEMORY) -> int:
    """Delete the de-duplication rows of events received more than `keep` before `now`; returns how many."""
    result = session.exec(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < now - keep))
    return int(result.rowcount or 0)
