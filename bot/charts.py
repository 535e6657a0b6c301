"""The /historik picture and its text summary, from a user's completed check-ins.

Rendering uses matplotlib's object API (a `Figure` on a `FigureCanvasAgg`), never
pyplot, because pyplot keeps global state that is not safe across the threads
the bot renders in. matplotlib is imported inside the functions so starting the
bot does not pay for it. `history_png` also works for an empty history (it shows
the empty zone bands and a note), so callers can always send the picture.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

from bot.knowledge import Knowledge, Zone
from bot.records import DayRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Colours are keyed by zone id (labels come from knowledge/traffic_light.yaml).
ZONE_COLOURS: Final[dict[str, str]] = {"green": "#2ca02c", "yellow": "#f0b400", "red": "#d62728"}
LINE_COLOUR: Final = "#4d4d4d"
WORSE_COLOUR: Final = "#000000"
BAND_ALPHA: Final = 0.15
FIGURE_INCHES: Final = (8.0, 4.5)
DPI: Final = 100  # 800 x 450 pixels
MAX_SPAN_DAYS: Final = 366
# A change in average pain smaller than this counts as "about the same".
TREND_TOLERANCE: Final = 0.5


def _span(span_days: int) -> int:
    return min(max(int(span_days), 1), MAX_SPAN_DAYS)


def _in_window(days: Sequence[DayRecord], first: date, last: date) -> dict[date, DayRecord]:
    """One record per day within [first, last]; a later duplicate for a day wins."""
    return {r.day: r for r in days if first <= r.day <= last}


def _zones(kb: Knowledge) -> list[Zone]:
    return sorted(kb.traffic_light.zones, key=lambda z: z.max_pain)


def _bands(kb: Knowledge) -> list[tuple[Zone, float, float]]:
    """(zone, low, high) for shading: integer scores sit in the middle of their band."""
    out = []
    low = -0.5
    zones = _zones(kb)
    for i, zone in enumerate(zones):
        high = 10.5 if i == len(zones) - 1 else zone.max_pain + 0.5
        out.append((zone, low, high))
        low = high
    return out


def _day_month(day: date) -> str:
    return f"{day.day}/{day.month}"


def history_figure(
    kb: Knowledge, days: Sequence[DayRecord], today: date, span_days: int = 30
) -> Figure:
    """The chart as a Figure (on an Agg canvas), so tests can inspect its artists."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    span = _span(span_days)
    first = today - timedelta(days=span - 1)
    records = _in_window(days, first, today)

    fig = Figure(figsize=FIGURE_INCHES, dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.075, right=0.78, top=0.9, bottom=0.14)
    ax = fig.add_subplot()

    handles: list[Patch | Line2D] = []
    for zone, low, high in _bands(kb):
        colour = ZONE_COLOURS[zone.id]
        ax.axhspan(
            low, high, facecolor=colour, alpha=BAND_ALPHA, linewidth=0, gid=f"band-{zone.id}"
        )
        lo_score = max(math.ceil(low), 0)
        hi_score = min(math.floor(high), 10)
        handles.append(Patch(facecolor=colour, label=f"{zone.label} ({lo_score}–{hi_score})"))

    xs = list(range(span))
    ys: list[float] = []
    for i in xs:
        rec = records.get(first + timedelta(days=i))
        ys.append(float(min(max(rec.pain, 0), 10)) if rec else math.nan)
    # NaN for a day without check-in breaks the line there, so gaps stay visible.
    ax.plot(xs, ys, color=LINE_COLOUR, linewidth=1.2, zorder=2, gid="pain-line")

    for zone in _zones(kb):
        pts = [
            (i, ys[i])
            for i in xs
            if (r := records.get(first + timedelta(days=i))) and r.zone == zone.id
        ]
        ax.scatter(
            [p[0] for p in pts],
            [p[1] for p in pts],
            s=70,
            color=ZONE_COLOURS[zone.id],
            edgecolors="white",
            linewidths=0.8,
            zorder=3,
            gid=f"points-{zone.id}",
        )
    worse = [
        (i, ys[i])
        for i in xs
        if (r := records.get(first + timedelta(days=i))) and r.morning == "worse"
    ]
    ax.scatter(
        [p[0] for p in worse],
        [p[1] for p in worse],
        s=190,
        facecolors="none",
        edgecolors=WORSE_COLOUR,
        linewidths=1.6,
        zorder=4,
        gid="worse-mornings",
    )
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            markersize=10,
            markerfacecolor="none",
            markeredgecolor=WORSE_COLOUR,
            markeredgewidth=1.6,
            label=kb.text("history_chart_worse_morning"),
        )
    )

    if not records:
        ax.text(
            0.5,
            0.5,
            kb.text("history_chart_empty"),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=13,
            color=LINE_COLOUR,
            gid="empty-note",
        )

    step = max(1, math.ceil(span / 7))
    ticks = list(range(span - 1, -1, -step))[::-1]
    ax.set_xticks(ticks, [_day_month(first + timedelta(days=i)) for i in ticks])
    ax.set_xlim(-0.7, span - 0.3)
    ax.set_ylim(-0.5, 10.5)
    ax.set_yticks(range(0, 11))
    ax.tick_params(labelsize=9)
    ax.set_title(kb.text("history_chart_title", span=span), fontsize=12)
    ax.set_xlabel(kb.text("history_chart_xlabel"), fontsize=10)
    ax.set_ylabel(kb.text("history_chart_ylabel"), fontsize=10)
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=9,
        borderaxespad=0.0,
    )
    return fig


def history_png(
    kb: Knowledge, days: Sequence[DayRecord], today: date, span_days: int = 30
) -> bytes:
    """The chart as PNG bytes (about 800 x 450 pixels); works for an empty history too."""
    fig = history_figure(kb, days, today, span_days)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _decimal(value: float) -> str:
    """Danish decimal comma."""
    return f"{value:.1f}".replace(".", ",")


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def history_summary(
    kb: Knowledge, days: Sequence[DayRecord], today: date, span_days: int = 30
) -> str:
    """A short Danish summary of the span: check-ins, days per zone, weekly averages, latest."""
    span = _span(span_days)
    first = today - timedelta(days=span - 1)
    records = _in_window(days, first, today)
    if not records:
        if any(r.day <= today for r in days):
            return kb.text("history_summary_none_in_span", span=span)
        return kb.text("history_summary_empty")

    lines = [kb.text("history_summary_title", span=span)]
    count = len(records)
    if count == 1:
        lines.append(kb.text("history_summary_checkins_one"))
    else:
        lines.append(kb.text("history_summary_checkins_many", count=count))
    for zone in _zones(kb):
        n = sum(1 for r in records.values() if r.zone == zone.id)
        unit = kb.text("history_unit_day_one" if n == 1 else "history_unit_day_many")
        lines.append(
            kb.text(
                "history_summary_zone_line",
                symbol=zone.symbol,
                label=zone.label,
                count=n,
                unit=unit,
            )
        )
    worse = sum(1 for r in records.values() if r.morning == "worse")
    if worse:
        lines.append(kb.text("history_summary_worse_mornings", count=worse))

    window = kb.traffic_light.trend.window_days
    every = _in_window(days, today - timedelta(days=2 * window - 1), today)
    recent = _mean([r.pain for d, r in every.items() if d > today - timedelta(days=window)])
    previous = _mean([r.pain for d, r in every.items() if d <= today - timedelta(days=window)])
    if recent is None:
        lines.append(kb.text("history_summary_avg_none", window=window))
    elif previous is None:
        lines.append(
            kb.text("history_summary_avg_recent_only", window=window, recent=_decimal(recent))
        )
    else:
        lines.append(
            kb.text(
                "history_summary_avg_both",
                window=window,
                recent=_decimal(recent),
                previous=_decimal(previous),
            )
        )
        if recent < previous - TREND_TOLERANCE:
            lines.append(kb.text("history_trend_lower"))
        elif recent > previous + TREND_TOLERANCE:
            lines.append(kb.text("history_trend_higher"))
        else:
            lines.append(kb.text("history_trend_same"))

    latest = records[max(records)]
    zone = kb.traffic_light.zone(latest.zone)
    lines.append(
        kb.text(
            "history_summary_latest",
            date=_day_month(latest.day),
            symbol=zone.symbol,
            label=zone.label,
            pain=latest.pain,
        )
    )
    return "\n".join(lines)
