"""Small value types shared by the check-in, trend and chart code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

ZoneId = Literal["green", "yellow", "red"]
Morning = Literal["better", "same", "worse"]


@dataclass(frozen=True)
class DayRecord:
    """One day's completed check-in; days without a check-in are simply absent."""

    day: date
    pain: int
    zone: ZoneId
    morning: Morning | None = None
    activity: str | None = None
