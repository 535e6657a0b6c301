"""Reminder time arithmetic: the next due instant of a daily wall-clock time.

Reminders are stored as a local wall-clock time plus the user's time zone, and
the due instant is recomputed in UTC after every firing. Doing that right across
daylight-saving changes is the whole point of this module: a wall time that does
not exist (spring forward) fires when the clocks jump past it, and a wall time
that happens twice (fall back) fires only at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _as_utc(instant: datetime) -> datetime:
    """Naive datetimes (SQLite drops the zone) are taken to be UTC."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date on the user's wall clock at `instant` (naive means UTC)."""
    return _as_utc(instant).astimezone(tz).date()


def _occurrence(day: date, local_time: time, tz: ZoneInfo) -> datetime:
    """The UTC instant `local_time` happens on `day`: first occurrence, or the end of a gap."""
    naive = datetime.combine(day, local_time.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first  # exists; fold=0 is the earlier of two occurrences on a fall-back day
    # Inside a spring-forward gap: fold=0 reads the wall time with the old offset (at or
    # after the jump), fold=1 with the new offset (before the jump). The jump lies between;
    # find the first instant that carries the new offset.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    old_offset = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(tz).utcoffset() == old_offset:
            lo = mid
        else:
            hi = mid
    return hi


def next_due(
    local_time: time,
    tz: ZoneInfo,
    after: datetime,
    *,
    skip_date: date | None = None,
) -> datetime:
    """The next UTC instant strictly after `after` when the wall clock in `tz` shows `local_time`.

    `skip_date` is a local date to leave out (the user has already checked in that day).
    A naive `after` is taken to be UTC.
    """
    start = _as_utc(after)
    day = local_date(start, tz) - timedelta(days=1)
    for _ in range(10):
        if day != skip_date:
            due = _occurrence(day, local_time, tz)
            if due > start:
                return due
        day += timedelta(days=1)
    raise RuntimeError("no reminder instant found within ten days")  # pragma: no cover
