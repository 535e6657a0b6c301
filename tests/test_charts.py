"""The /historik chart and summary: real rendering, inspected by artists and by pixels."""

from __future__ import annotations

import dataclasses
import io
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import Patch

from bot.charts import ZONE_COLOURS, history_figure, history_png, history_summary
from bot.knowledge import Knowledge, TrafficLight
from bot.records import DayRecord, Morning

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
TODAY = date(2026, 3, 30)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _make_kb(texts: dict[str, str] | None = None) -> Knowledge:
    """Only the files the chart reads, so other YAML being edited cannot break these tests."""
    traffic = TrafficLight.model_validate(
        yaml.safe_load((KNOWLEDGE / "traffic_light.yaml").read_text(encoding="utf-8"))
    )
    loaded = yaml.safe_load((KNOWLEDGE / "texts" / "history.yaml").read_text(encoding="utf-8"))
    return Knowledge(
        guides={},
        entries={},
        entry_guide={},
        entry_kind={},
        guide_texts={},
        red_flags=[],
        synonyms={},
        traffic_light=traffic,
        texts={**loaded, **(texts or {})},
        intents=[],
    )


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return _make_kb()


def rec(kb: Knowledge, days_ago: int, pain: int, morning: Morning | None = None) -> DayRecord:
    zone = kb.traffic_light.zone_for(pain, morning == "worse").id
    return DayRecord(day=TODAY - timedelta(days=days_ago), pain=pain, zone=zone, morning=morning)


def _collection(fig: Figure, gid: str) -> PathCollection:
    ax = fig.axes[0]
    found = [c for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, gid
    coll = found[0]
    assert isinstance(coll, PathCollection)
    return coll


def _offsets(fig: Figure, gid: str) -> list[tuple[float, float]]:
    offsets = np.asarray(_collection(fig, gid).get_offsets(), dtype=float)
    return [(float(x), float(y)) for x, y in offsets.tolist()]


def _ix(value: float) -> int:
    """A pixel index from a display coordinate."""
    return round(float(value))


def _pixels(png: bytes) -> np.ndarray[Any, Any]:
    img = imread(io.BytesIO(png), format="png")
    return np.asarray(img[:, :, :3], dtype=float)


def _pixel_at(fig: Figure, img: np.ndarray[Any, Any], x: float, y: float) -> np.ndarray[Any, Any]:
    """The RGB colour where data point (x, y) lands in the rendered image."""
    fig.canvas.draw()
    px, py = fig.axes[0].transData.transform((x, y))
    height = img.shape[0]
    pixel: np.ndarray[Any, Any] = img[_ix(height - py), _ix(px)]
    return pixel


def _band_ys(patch: Patch) -> list[float]:
    vertices = np.asarray(patch.get_path().transformed(patch.get_patch_transform()).vertices)
    return [float(v) for v in vertices[:, 1]]


def _close(colour: np.ndarray[Any, Any], hex_colour: str, tol: float = 0.06) -> bool:
    return bool(np.all(np.abs(colour - np.array(to_rgb(hex_colour))) <= tol))


# -------------------------------------------------------------------------- the PNG


def test_png_is_valid_small_and_800x450(kb: Knowledge) -> None:
    days = [rec(kb, i, (i * 7) % 11, "worse" if i % 5 == 0 else "same") for i in range(30)]
    png = history_png(kb, days, TODAY)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < 100_000
    img = imread(io.BytesIO(png), format="png")
    assert img.shape[:2] == (450, 800)


def test_zone_colours_are_drawn_at_the_red_and_green_days(kb: Knowledge) -> None:
    days = [rec(kb, 10, 8), rec(kb, 5, 1), rec(kb, 2, 4)]
    fig = history_figure(kb, days, TODAY)
    img = _pixels(history_png(kb, days, TODAY))
    red = _pixel_at(fig, img, 29 - 10, 8)
    green = _pixel_at(fig, img, 29 - 5, 1)
    yellow = _pixel_at(fig, img, 29 - 2, 4)
    assert _close(red, ZONE_COLOURS["red"]), red
    assert _close(green, ZONE_COLOURS["green"]), green
    assert _close(yellow, ZONE_COLOURS["yellow"]), yellow
    # The same spot on a day without check-in is only the pale band, not the zone colour.
    empty_red_band = _pixel_at(fig, img, 29 - 20, 8)
    assert not _close(empty_red_band, ZONE_COLOURS["red"], tol=0.2)


def test_worse_morning_recoloured_red_and_ringed(kb: Knowledge) -> None:
    # Far apart, so neither the line nor a neighbour's ring is near either point.
    days = [rec(kb, 3, 1, "worse"), rec(kb, 12, 1, "better")]
    fig = history_figure(kb, days, TODAY)
    assert _offsets(fig, "worse-mornings") == [(26.0, 1.0)]
    assert _offsets(fig, "points-red") == [(26.0, 1.0)]
    assert _offsets(fig, "points-green") == [(17.0, 1.0)]
    img = _pixels(history_png(kb, days, TODAY))
    assert _close(_pixel_at(fig, img, 26, 1), ZONE_COLOURS["red"])
    assert _close(_pixel_at(fig, img, 17, 1), ZONE_COLOURS["green"])
    # The ring: dark pixels just above the worse day's point, none above the other one.
    fig.canvas.draw()
    ax = fig.axes[0]
    (cx, cy) = ax.transData.transform((26, 1))
    (ox, oy) = ax.transData.transform((17, 1))
    height = img.shape[0]

    def darkest_above(x: float, y: float) -> float:
        column = _ix(x)
        return float(min(img[_ix(height - y) - dy, column].sum() for dy in range(7, 13)))

    assert darkest_above(cx, cy) < 0.6
    assert darkest_above(ox, oy) > 1.5


def test_gap_days_have_no_point_and_break_the_line(kb: Knowledge) -> None:
    # Check-ins on days 10..14 ago and 6..8 ago: days 9 and 5..0 ago have none.
    days = [rec(kb, d, 3 + d % 3) for d in (14, 13, 12, 11, 10, 8, 7, 6)]
    fig = history_figure(kb, days, TODAY)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_gid() == "pain-line"]
    assert len(lines) == 1
    xdata = np.asarray(lines[0].get_xdata(), dtype=float)
    ydata = np.asarray(lines[0].get_ydata(), dtype=float)
    assert len(xdata) == 30
    gap_index = 29 - 9
    assert math.isnan(ydata[gap_index])
    assert not math.isnan(ydata[gap_index - 1])
    assert not math.isnan(ydata[gap_index + 1])
    plotted_x = {
        x
        for coll in ("points-green", "points-yellow", "points-red")
        for x, _ in _offsets(fig, coll)
    }
    assert plotted_x == {float(29 - d) for d in (14, 13, 12, 11, 10, 8, 7, 6)}

    # In pixels: the column of the gap day inside the axes holds neither line nor point colours.
    img = _pixels(history_png(kb, days, TODAY))
    fig.canvas.draw()
    (gx, top) = ax.transData.transform((gap_index, 10.4))
    (_, bottom) = ax.transData.transform((gap_index, -0.4))
    height = img.shape[0]
    column = img[int(height - top) : int(height - bottom), _ix(gx) - 2 : _ix(gx) + 3]
    drawn = ["#4d4d4d", *ZONE_COLOURS.values()]
    for colour in drawn:
        diff = np.abs(column - np.array(to_rgb(colour))).max(axis=2)
        assert not (diff < 0.15).any(), colour
    # The same check on a day with check-ins does find the line/point colours (the test can fail).
    (hx, _) = ax.transData.transform((gap_index - 1, 0))
    filled = img[int(height - top) : int(height - bottom), _ix(hx) - 2 : _ix(hx) + 3]
    assert any((np.abs(filled - np.array(to_rgb(c))).max(axis=2) < 0.15).any() for c in drawn)


def test_points_outside_the_span_or_in_the_future_are_left_out(kb: Knowledge) -> None:
    days = [rec(kb, 40, 5), rec(kb, 30, 5), rec(kb, 29, 7), rec(kb, -1, 1)]
    fig = history_figure(kb, days, TODAY)
    assert _offsets(fig, "points-red") == [(0.0, 7.0)]
    assert _offsets(fig, "points-yellow") == []
    assert _offsets(fig, "points-green") == []


def test_empty_history_still_draws_the_bands_and_a_note(kb: Knowledge) -> None:
    png = history_png(kb, [], TODAY)
    assert png.startswith(PNG_SIGNATURE)
    assert imread(io.BytesIO(png), format="png").shape[:2] == (450, 800)
    fig = history_figure(kb, [], TODAY)
    ax = fig.axes[0]
    for gid in ("points-green", "points-yellow", "points-red", "worse-mornings"):
        assert _offsets(fig, gid) == []
    notes = [t.get_text() for t in ax.texts if t.get_gid() == "empty-note"]
    assert notes == [kb.text("history_chart_empty")]
    bands = {p.get_gid(): p for p in ax.patches if str(p.get_gid()).startswith("band-")}
    assert set(bands) == {"band-green", "band-yellow", "band-red"}
    img = _pixels(png)
    # The pale bands are visible and tinted by their zone.
    green_band = _pixel_at(fig, img, 3, 1)
    red_band = _pixel_at(fig, img, 3, 8)
    assert green_band[1] > green_band[0] and green_band[1] > green_band[2]
    assert red_band[0] > red_band[1] and red_band[0] > red_band[2]


def test_bands_follow_the_yaml_thresholds(kb: Knowledge) -> None:
    fig = history_figure(kb, [], TODAY)
    bands = {p.get_gid(): p for p in fig.axes[0].patches if str(p.get_gid()).startswith("band-")}
    extents = {}
    for gid, patch in bands.items():
        ys = _band_ys(patch)
        extents[gid] = (float(min(ys)), float(max(ys)))
    assert extents["band-green"] == (-0.5, 2.5)
    assert extents["band-yellow"] == (2.5, 5.5)
    assert extents["band-red"] == (5.5, 10.5)

    # A maintainer moving a threshold moves the band.
    data = kb.traffic_light.model_dump()
    for zone in data["zones"]:
        if zone["id"] == "green":
            zone["max_pain"] = 3
    moved = dataclasses.replace(kb, traffic_light=TrafficLight.model_validate(data))
    fig2 = history_figure(moved, [], TODAY)
    patch = next(p for p in fig2.axes[0].patches if p.get_gid() == "band-green")
    ys = _band_ys(patch)
    assert float(max(ys)) == 3.5


def test_chart_texts_come_from_yaml() -> None:
    custom = _make_kb(
        {
            "history_chart_title": "TITEL {span}",
            "history_chart_xlabel": "X-AKSE",
            "history_chart_ylabel": "Y-AKSE",
            "history_chart_worse_morning": "MORGEN-MÆRKE",
            "history_chart_empty": "TOMT ENDNU",
        }
    )
    fig = history_figure(custom, [], TODAY, span_days=14)
    ax = fig.axes[0]
    assert ax.get_title() == "TITEL 14"
    assert ax.get_xlabel() == "X-AKSE"
    assert ax.get_ylabel() == "Y-AKSE"
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    zone_labels = [z.label for z in sorted(custom.traffic_light.zones, key=lambda z: z.max_pain)]
    assert [lbl.split(" (")[0] for lbl in labels[:3]] == zone_labels
    assert labels[3] == "MORGEN-MÆRKE"
    assert [t.get_text() for t in ax.texts] == ["TOMT ENDNU"]


def test_every_text_key_the_module_uses_is_in_history_yaml() -> None:
    source = (ROOT / "bot" / "charts.py").read_text(encoding="utf-8")
    used = set(re.findall(r'"(history_[a-z_]+)"', source))
    loaded = yaml.safe_load((KNOWLEDGE / "texts" / "history.yaml").read_text(encoding="utf-8"))
    assert used, "expected text keys in bot/charts.py"
    assert used <= set(loaded)
    assert all(key.startswith("history_") for key in loaded)


def test_dates_are_day_slash_month_and_today_is_labelled(kb: Knowledge) -> None:
    fig = history_figure(kb, [], TODAY)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == "30/3"
    assert all(re.fullmatch(r"\d{1,2}/\d{1,2}", lbl) for lbl in labels)
    assert "5/3" in labels


@pytest.mark.parametrize("span", [0, -5, 1, 7, 400])
def test_odd_spans_and_pain_values_do_not_crash(kb: Knowledge, span: int) -> None:
    odd = [
        DayRecord(day=TODAY, pain=15, zone="red"),
        DayRecord(day=TODAY - timedelta(days=1), pain=-3, zone="green"),
    ]
    png = history_png(kb, odd, TODAY, span_days=span)
    assert png.startswith(PNG_SIGNATURE)
    fig = history_figure(kb, odd, TODAY, span_days=span)
    ys = [y for _, y in _offsets(fig, "points-red")]
    assert ys == [10.0]  # clipped to the scale
    assert isinstance(history_summary(kb, odd, TODAY, span_days=span), str)


def test_rendering_is_thread_safe_and_deterministic(kb: Knowledge) -> None:
    sets: list[Sequence[DayRecord]] = [
        [rec(kb, i, i % 11) for i in range(0, 30, 2)],
        [rec(kb, i, 10 - i % 11, "worse") for i in range(1, 30, 3)],
    ]
    expected = [history_png(kb, s, TODAY) for s in sets]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda s: history_png(kb, s, TODAY), sets))
    assert got == expected
    assert expected[0] != expected[1]


# ----------------------------------------------------------------------- the summary


def test_summary_of_empty_history_invites_a_first_checkin(kb: Knowledge) -> None:
    text = history_summary(kb, [], TODAY)
    assert text == kb.text("history_summary_empty")
    assert "check-in" in text


def test_summary_when_all_checkins_are_older_than_the_span(kb: Knowledge) -> None:
    text = history_summary(kb, [rec(kb, 45, 3)], TODAY)
    assert text == kb.text("history_summary_none_in_span", span=30)


def test_summary_counts_zones_averages_and_latest(kb: Knowledge) -> None:
    days = [
        # the week before: 13..7 days ago, pains 6, 6, 7 -> 6,3
        rec(kb, 13, 6),
        rec(kb, 10, 6),
        rec(kb, 7, 7),
        # the last 7 days: 6..0 days ago, pains 2, 1, 3, 1 (one worse morning) -> 1,8
        rec(kb, 6, 2),
        rec(kb, 4, 1, "worse"),
        rec(kb, 2, 3),
        rec(kb, 0, 1),
        # outside the 30-day span: ignored
        rec(kb, 31, 9),
    ]
    text = history_summary(kb, days, TODAY)
    lines = text.splitlines()
    assert lines[0] == kb.text("history_summary_title", span=30)
    assert kb.text("history_summary_checkins_many", count=7) in lines
    green, yellow, red = (kb.traffic_light.zone(z) for z in ("green", "yellow", "red"))
    day_one, day_many = kb.text("history_unit_day_one"), kb.text("history_unit_day_many")
    assert (
        kb.text(
            "history_summary_zone_line",
            symbol=green.symbol,
            label=green.label,
            count=2,
            unit=day_many,
        )
        in lines
    )
    assert (
        kb.text(
            "history_summary_zone_line",
            symbol=yellow.symbol,
            label=yellow.label,
            count=1,
            unit=day_one,
        )
        in lines
    )
    assert (
        kb.text(
            "history_summary_zone_line", symbol=red.symbol, label=red.label, count=4, unit=day_many
        )
        in lines
    )
    assert kb.text("history_summary_worse_mornings", count=1) in lines
    assert kb.text("history_summary_avg_both", window=7, recent="1,8", previous="6,3") in lines
    assert kb.text("history_trend_lower") in lines
    assert lines[-1] == kb.text(
        "history_summary_latest", date="30/3", symbol=green.symbol, label=green.label, pain=1
    )


def test_summary_trend_higher_same_and_recent_only(kb: Knowledge) -> None:
    higher = history_summary(kb, [rec(kb, 10, 1), rec(kb, 1, 6)], TODAY)
    assert kb.text("history_trend_higher") in higher.splitlines()
    same = history_summary(kb, [rec(kb, 10, 4), rec(kb, 1, 4)], TODAY)
    assert kb.text("history_trend_same") in same.splitlines()
    only = history_summary(kb, [rec(kb, 1, 4)], TODAY)
    assert kb.text("history_summary_avg_recent_only", window=7, recent="4,0") in only.splitlines()
    assert kb.text("history_summary_checkins_one") in only.splitlines()
    assert not any(
        kb.text(k) in only
        for k in ("history_trend_higher", "history_trend_same", "history_trend_lower")
    )
    none_recent = history_summary(kb, [rec(kb, 20, 4)], TODAY)
    assert kb.text("history_summary_avg_none", window=7) in none_recent.splitlines()


def test_summary_uses_one_record_per_day_and_the_yaml_texts() -> None:
    custom = _make_kb({"history_summary_checkins_many": "ANTAL={count}"})
    first = rec(custom, 1, 8)
    again = DayRecord(day=first.day, pain=2, zone="green")
    text = history_summary(custom, [first, again, rec(custom, 0, 2)], TODAY)
    assert "ANTAL=2" in text.splitlines()
    assert "2,0/10" in text  # the later record for the duplicated day wins


def test_importing_the_module_does_not_import_matplotlib() -> None:
    """Bot start-up must not pay for matplotlib; only drawing a chart does."""
    code = "import sys, bot.charts; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
