"""Reminder time parsing and next-due arithmetic, including daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.schedule import local_date, next_due

CPH = ZoneInfo("Europe/Copenhagen")
NYC = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
UTC_ZONE = ZoneInfo("UTC")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ----------------------------------------------------------------- parse_reminder_time


def test_local_date_crosses_midnight_by_zone() -> None:
    instant = utc(2026, 6, 30, 22, 30)  # 00:30 on 1 July in Copenhagen (CEST)
    assert local_date(instant, CPH) == date(2026, 7, 1)
    assert local_date(instant, UTC_ZONE) == date(2026, 6, 30)
    assert local_date(instant, NYC) == date(2026, 6, 30)
    assert local_date(utc(2026, 1, 1, 16, 0), TOKYO) == date(2026, 1, 2)


def test_local_date_takes_naive_as_utc() -> None:
    assert local_date(datetime(2026, 6, 30, 22, 30), CPH) == date(2026, 7, 1)


# --------------------------------------------------------------------------- next_due


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Winter (CET, UTC+1): 07:30 local is 06:30 UTC.
        (utc(2026, 1, 15, 5, 0), utc(2026, 1, 15, 6, 30)),
        (utc(2026, 1, 15, 6, 29), utc(2026, 1, 15, 6, 30)),
        (utc(2026, 1, 15, 6, 30), utc(2026, 1, 16, 6, 30)),  # strictly after
        (utc(2026, 1, 15, 12, 0), utc(2026, 1, 16, 6, 30)),
        # Summer (CEST, UTC+2): 07:30 local is 05:30 UTC.
        (utc(2026, 7, 1, 4, 0), utc(2026, 7, 1, 5, 30)),
        (utc(2026, 7, 1, 5, 30), utc(2026, 7, 2, 5, 30)),
        # Late evening UTC that is already the next local day.
        (utc(2026, 7, 1, 23, 0), utc(2026, 7, 2, 5, 30)),
        # Spring forward 2026 (29 March): the day before in CET, the day itself in CEST.
        (utc(2026, 3, 28, 6, 0), utc(2026, 3, 28, 6, 30)),
        (utc(2026, 3, 28, 7, 0), utc(2026, 3, 29, 5, 30)),
        # Fall back 2026 (25 October): the day itself is already CET again.
        (utc(2026, 10, 24, 7, 0), utc(2026, 10, 25, 6, 30)),
        (utc(2026, 10, 24, 5, 0), utc(2026, 10, 24, 5, 30)),
        # 2027: spring forward 28 March, fall back 31 October.
        (utc(2027, 3, 27, 12, 0), utc(2027, 3, 28, 5, 30)),
        (utc(2027, 10, 30, 12, 0), utc(2027, 10, 31, 6, 30)),
        (utc(2027, 10, 31, 6, 30), utc(2027, 11, 1, 6, 30)),
    ],
)
def test_next_due_copenhagen_0730(after: datetime, expected: datetime) -> None:
    due = next_due(time(7, 30), CPH, after)
    assert due == expected
    assert due.utcoffset() == timedelta(0)
    assert due.astimezone(CPH).time() == time(7, 30)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # 02:30 does not exist on 29 March 2026: clocks jump 02:00 -> 03:00 (01:00 UTC).
        (utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0)),
        # After the gap day it is an ordinary CEST time again.
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)),
        (utc(2027, 3, 27, 12, 0), utc(2027, 3, 28, 1, 0)),
    ],
)
def test_next_due_inside_spring_forward_gap_fires_when_clocks_jump(
    after: datetime, expected: datetime
) -> None:
    due = next_due(time(2, 30), CPH, after)
    assert due == expected
    if expected.day in (29, 28):
        assert due.astimezone(CPH).time() == time(3, 0)


def test_next_due_gap_at_the_gap_start_itself() -> None:
    due = next_due(time(2, 0), CPH, utc(2026, 3, 28, 12, 0))
    assert due == utc(2026, 3, 29, 1, 0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # 02:30 happens twice on 25 October 2026: 00:30 UTC (CEST) and 01:30 UTC (CET).
        (utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30)),
        # Between the two occurrences: do not fire again, wait for the next day.
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 1, 0), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 1, 29), utc(2026, 10, 26, 1, 30)),
        (utc(2027, 10, 30, 12, 0), utc(2027, 10, 31, 0, 30)),
        (utc(2027, 10, 31, 1, 15), utc(2027, 11, 1, 1, 30)),
    ],
)
def test_next_due_inside_fall_back_overlap_fires_once(after: datetime, expected: datetime) -> None:
    assert next_due(time(2, 30), CPH, after) == expected


def test_next_due_skips_the_date_already_checked_in() -> None:
    after = utc(2026, 6, 10, 4, 0)  # 06:00 local
    assert next_due(time(7, 30), CPH, after) == utc(2026, 6, 10, 5, 30)
    assert next_due(time(7, 30), CPH, after, skip_date=date(2026, 6, 10)) == utc(2026, 6, 11, 5, 30)
    # A skip date in the past or far ahead changes nothing.
    assert next_due(time(7, 30), CPH, after, skip_date=date(2026, 6, 9)) == utc(2026, 6, 10, 5, 30)
    assert next_due(time(7, 30), CPH, after, skip_date=date(2026, 6, 12)) == utc(2026, 6, 10, 5, 30)


def test_next_due_skip_date_is_the_local_date_not_the_utc_date() -> None:
    # 00:30 local on 2 July is 22:30 UTC on 1 July.
    after = utc(2026, 7, 1, 20, 0)
    assert next_due(time(0, 30), CPH, after) == utc(2026, 7, 1, 22, 30)
    skipped = next_due(time(0, 30), CPH, after, skip_date=date(2026, 7, 2))
    assert skipped == utc(2026, 7, 2, 22, 30)
    assert next_due(time(0, 30), CPH, after, skip_date=date(2026, 7, 1)) == utc(2026, 7, 1, 22, 30)


def test_next_due_skip_date_on_a_gap_day() -> None:
    due = next_due(time(2, 30), CPH, utc(2026, 3, 28, 12, 0), skip_date=date(2026, 3, 29))
    assert due == utc(2026, 3, 30, 0, 30)


@pytest.mark.parametrize(
    ("tz", "local", "after", "expected"),
    [
        # New York: EST UTC-5 in winter, EDT UTC-4 in summer; DST 8 March - 1 November 2026.
        (NYC, time(7, 30), utc(2026, 1, 15, 0, 0), utc(2026, 1, 15, 12, 30)),
        (NYC, time(7, 30), utc(2026, 7, 15, 0, 0), utc(2026, 7, 15, 11, 30)),
        (NYC, time(7, 30), utc(2026, 3, 7, 18, 0), utc(2026, 3, 8, 11, 30)),
        (NYC, time(2, 30), utc(2026, 3, 7, 18, 0), utc(2026, 3, 8, 7, 0)),  # gap -> 03:00 EDT
        (NYC, time(1, 30), utc(2026, 10, 31, 18, 0), utc(2026, 11, 1, 5, 30)),  # first, EDT
        (NYC, time(1, 30), utc(2026, 11, 1, 5, 45), utc(2026, 11, 2, 6, 30)),  # not the EST repeat
        # Tokyo: UTC+9, no DST; 07:30 local is 22:30 UTC the day before.
        (TOKYO, time(7, 30), utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 22, 30)),
        (TOKYO, time(7, 30), utc(2026, 3, 28, 22, 0), utc(2026, 3, 28, 22, 30)),
        (TOKYO, time(23, 0), utc(2026, 3, 29, 14, 0), utc(2026, 3, 30, 14, 0)),
        # UTC itself.
        (UTC_ZONE, time(7, 30), utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 7, 30)),
        (UTC_ZONE, time(0, 0), utc(2026, 12, 31, 23, 59), utc(2027, 1, 1, 0, 0)),
    ],
)
def test_next_due_other_zones(
    tz: ZoneInfo, local: time, after: datetime, expected: datetime
) -> None:
    assert next_due(local, tz, after) == expected


def test_next_due_accepts_after_in_any_zone_and_naive_as_utc() -> None:
    expected = utc(2026, 7, 1, 5, 30)
    assert next_due(time(7, 30), CPH, datetime(2026, 7, 1, 6, 0, tzinfo=CPH)) == expected
    assert next_due(time(7, 30), CPH, datetime(2026, 7, 1, 4, 0)) == expected
    assert next_due(time(7, 30), CPH, datetime(2026, 7, 1, 4, 0)).tzinfo is UTC


def test_next_due_daily_sequence_across_a_year_fires_every_local_day_once() -> None:
    due = utc(2026, 1, 1, 0, 0)
    seen: list[date] = []
    for _ in range(366):
        due = next_due(time(7, 30), CPH, due)
        seen.append(local_date(due, CPH))
        assert due.astimezone(CPH).time() == time(7, 30)
    assert seen == [date(2026, 1, 1) + timedelta(days=i) for i in range(366)]


# ------------------------------------------------------------------ property tests

ZONES = [CPH, NYC, TOKYO, UTC_ZONE, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/Santiago")]
TRANSITIONS = [
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2027, 3, 28, 1, 0),
    utc(2027, 10, 31, 1, 0),
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
]


def _exists(day: date, local: time, tz: ZoneInfo) -> bool:
    naive = datetime.combine(day, local)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def _wall_instants(day: date, local: time, tz: ZoneInfo) -> set[datetime]:
    """Every UTC instant whose wall clock in tz reads `local` on `day` (0, 1 or 2 of them)."""
    naive = datetime.combine(day, local)
    out = set()
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive:
            out.add(instant)
    return out


def _check_next_due(local: time, tz: ZoneInfo, after: datetime, skip: date | None) -> None:
    due = next_due(local, tz, after, skip_date=skip)
    assert due > after
    assert due.tzinfo is UTC
    assert due - after <= timedelta(days=3, hours=1)
    wall = due.astimezone(tz)
    if wall.time() == local:
        # Fire once: on an overlap day this must be the earlier occurrence.
        assert due == min(_wall_instants(wall.date(), local, tz))
    else:
        # Only on a gap day: the wall time does not exist and this is the instant clocks jump.
        assert not _exists(wall.date(), local, tz)
        assert wall.time() > local
        assert (due - timedelta(seconds=1)).astimezone(tz).utcoffset() != wall.utcoffset()
    assert local_date(due, tz) != skip
    # Nothing was missed: no earlier unskipped day had the wall time after `after`.
    day = local_date(after, tz)
    while day < wall.date():
        if day != skip:
            instants = _wall_instants(day, local, tz)
            assert not instants or min(instants) <= after
            assert _exists(day, local, tz) or day == local_date(after, tz)
        day += timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(
    local=st.times(),
    tz=st.sampled_from(ZONES),
    after=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    skip_offset=st.none() | st.integers(-1, 2),
)
def test_next_due_properties_anywhere(
    local: time, tz: ZoneInfo, after: datetime, skip_offset: int | None
) -> None:
    skip = None if skip_offset is None else local_date(after, tz) + timedelta(days=skip_offset)
    _check_next_due(local, tz, after, skip)


@settings(max_examples=300, deadline=None)
@given(
    hour=st.integers(0, 4),
    minute=st.integers(0, 59),
    transition=st.sampled_from(TRANSITIONS),
    shift_minutes=st.integers(-36 * 60, 36 * 60),
    tz=st.sampled_from([CPH, NYC]),
    skip_offset=st.none() | st.integers(0, 1),
)
def test_next_due_properties_near_dst_changes(
    hour: int,
    minute: int,
    transition: datetime,
    shift_minutes: int,
    tz: ZoneInfo,
    skip_offset: int | None,
) -> None:
    after = transition + timedelta(minutes=shift_minutes)
    skip = None if skip_offset is None else local_date(after, tz) + timedelta(days=skip_offset)
    _check_next_due(time(hour, minute), tz, after, skip)
