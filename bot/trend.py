"""The check-in trend: the last days as coloured dots and plain advice from the pattern.

Pure functions over `DayRecord`s so the check-in summary, /historik and the tests
share one reading of the rules in knowledge/traffic_light.yaml (`trend:`). All
wording lives in knowledge/texts/checkin.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from bot.knowledge import Knowledge, TrafficLight
from bot.records import DayRecord, ZoneId

# A week needs this many check-ins before its average pain is worth comparing.
MIN_CHECKINS_PER_WEEK = 2
# The recent week must be this much lower (points of 0-10) to count as clearly better.
CLEAR_IMPROVEMENT = 1.5

FindingKind = Literal["no_improvement", "red_streak", "green_streak", "first", "ok"]


@dataclass(frozen=True)
class Finding:
    """One pattern in the history, with the figures its text needs."""

    kind: FindingKind
    days: int = 0
    weeks: int = 0
    first_avg: float = 0.0
    last_avg: float = 0.0


def by_day(history: Iterable[DayRecord], today: date) -> dict[date, DayRecord]:
    """One record per day up to today; a later record for the same day wins."""
    days: dict[date, DayRecord] = {}
    for record in history:
        if record.day <= today:
            days[record.day] = record
    return days


def window(history: Iterable[DayRecord], today: date, days: int) -> list[DayRecord | None]:
    """The last `days` days, oldest first and today last; None where nobody checked in."""
    known = by_day(history, today)
    return [known.get(today - timedelta(days=offset)) for offset in range(days - 1, -1, -1)]


def dots(tl: TrafficLight, history: Iterable[DayRecord], today: date) -> str:
    """The window as one line of zone symbols (empty days as the empty symbol)."""
    symbols = {z.id: z.symbol for z in tl.zones}
    cells = window(history, today, tl.trend.window_days)
    return "".join(symbols[r.zone] if r else tl.trend.empty_symbol for r in cells)


def streak(history: Iterable[DayRecord], today: date, zone: ZoneId) -> int:
    """Consecutive calendar days ending today in `zone`; a day without check-in ends it."""
    known = by_day(history, today)
    count = 0
    day = today
    while (record := known.get(day)) is not None and record.zone == zone:
        count += 1
        day -= timedelta(days=1)
    return count


def _average(records: Sequence[DayRecord]) -> float | None:
    if len(records) < MIN_CHECKINS_PER_WEEK:
        return None
    return sum(r.pain for r in records) / len(records)


def no_improvement(
    tl: TrafficLight, history: Iterable[DayRecord], today: date
) -> tuple[float, float] | None:
    """(first week's, last week's) average pain when a span of `no_improvement_weeks`
    shows no clear improvement and the runner still hurts; else None.

    The first week is the week that began `no_improvement_weeks` weeks ago, the last
    is the seven days ending today. A runner back in the green zone is not flagged.
    """
    weeks = tl.trend.no_improvement_weeks
    known = by_day(history, today)
    start = today - timedelta(days=7 * weeks - 1)
    first = [r for d, r in known.items() if start <= d < start + timedelta(days=7)]
    last = [r for d, r in known.items() if today - timedelta(days=6) <= d <= today]
    if weeks == 1:  # the same seven days; nothing to compare
        return None
    first_avg, last_avg = _average(first), _average(last)
    if first_avg is None or last_avg is None:
        return None
    green_max = tl.zone("green").max_pain
    if last_avg <= green_max and not any(r.zone == "red" for r in last):
        return None
    if last_avg <= first_avg - CLEAR_IMPROVEMENT:
        return None
    return first_avg, last_avg


def findings(tl: TrafficLight, history: Iterable[DayRecord], today: date) -> list[Finding]:
    """Every pattern that fires, most important first; `ok` or `first` when none does."""
    records = list(history)
    rules = tl.trend
    found: list[Finding] = []
    if (avgs := no_improvement(tl, records, today)) is not None:
        found.append(
            Finding(
                "no_improvement",
                weeks=rules.no_improvement_weeks,
                first_avg=avgs[0],
                last_avg=avgs[1],
            )
        )
    if (reds := streak(records, today, "red")) >= rules.red_streak_days:
        found.append(Finding("red_streak", days=reds))
    if (greens := streak(records, today, "green")) >= rules.green_streak_days:
        found.append(Finding("green_streak", days=greens))
    if not found:
        first = len(by_day(records, today)) <= 1
        found.append(Finding("first" if first else "ok"))
    return found


def _for_guide(kb: Knowledge, key: str, guide: str | None) -> str:
    """The guide's own variant of a text (`key_<guide>`) when there is one."""
    return f"{key}_{guide}" if guide and f"{key}_{guide}" in kb.texts else key


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def finding_text(kb: Knowledge, finding: Finding, guide: str | None) -> str:
    key = _for_guide(kb, f"checkin_trend_{finding.kind}", guide)
    return kb.text(
        key,
        days=finding.days,
        weeks=finding.weeks,
        first=_one_decimal(finding.first_avg),
        last=_one_decimal(finding.last_avg),
    )


def trend_text(kb: Knowledge, history: Iterable[DayRecord], today: date, guide: str | None) -> str:
    """The dots line and the advice from the pattern, ready to send."""
    records = list(history)
    tl = kb.traffic_light
    line = kb.text("checkin_trend_line", days=tl.trend.window_days, dots=dots(tl, records, today))
    advice = [finding_text(kb, f, guide) for f in findings(tl, records, today)]
    return "\n\n".join([line, *advice])
