"""Times and dates shared by the tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

T0 = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


D0 = date(2024, 3, 1)
