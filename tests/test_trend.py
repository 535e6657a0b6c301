"""The trend: the dots line, streaks and the no-improvement rule, and their texts."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from bot import trend
from bot.knowledge import Knowledge, TrafficLight, load_knowledge
from bot.records import DayRecord, ZoneId

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2025, 3, 14)
ZONE_OF_PAIN: dict[int, ZoneId] = {
    p: "green" if p <= 2 else "yellow" if p <= 5 else "red" for p in range(11)
}


@pytest.fixture(scope="module")
def tl() -> TrafficLight:
    """The real traffic light, read on its own so other files' edits cannot break these tests."""
    data = yaml.safe_load((ROOT / "knowledge" / "traffic_light.yaml").read_text(encoding="utf-8"))
    return TrafficLight.model_validate(data)


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    """The real traffic light and check-in texts without the guides' FAQ and sections (fast)."""
    root = tmp_path_factory.mktemp("kb")
    kdir = root / "knowledge"
    (kdir / "texts").mkdir(parents=True)
    (root / "intents").mkdir()
    shutil.copytree(ROOT / "knowledge" / "guides", kdir / "guides")
    shutil.copytree(ROOT / "knowledge" / "lang", kdir / "lang")
    for name in ("guides.yaml", "traffic_light.yaml", "texts/checkin.yaml"):
        shutil.copy(ROOT / "knowledge" / name, kdir / name)
    red_flag = {
        "id": "natlige_smerter",
        "guides": ["proximal"],
        "guide_text": "Natlige smerter der vækker dig",
        "all_of": [["natten"], ["vækker"]],
        "examples": ["smerten vækker mig om natten"],
    }
    (kdir / "red_flags.yaml").write_text(
        yaml.safe_dump({"red_flags": [red_flag]}, allow_unicode=True), encoding="utf-8"
    )
    (kdir / "synonyms.yaml").write_text("synonyms: {}\n", encoding="utf-8")
    return load_knowledge(kdir, root / "intents")


def rec(days_ago: int, pain: int, zone: ZoneId | None = None) -> DayRecord:
    return DayRecord(TODAY - timedelta(days=days_ago), pain, zone or ZONE_OF_PAIN[pain])


def weeks_of(pain_first: int, pain_last: int, weeks: int = 6, every: int = 2) -> list[DayRecord]:
    """Check-ins every `every` days over `weeks` weeks, pain moving from first to last."""
    span = 7 * weeks - 1
    records = []
    for ago in range(0, span + 1, every):
        pain = round(pain_last + (pain_first - pain_last) * ago / span)
        records.append(rec(ago, pain))
    return records


def kinds(tl: TrafficLight, history: list[DayRecord]) -> list[str]:
    return [f.kind for f in trend.findings(tl, history, TODAY)]


# ------------------------------------------------------------------ dots


def test_dots_oldest_first_today_last_with_gaps(tl: TrafficLight) -> None:
    history = [rec(0, 7), rec(2, 4), rec(6, 1)]
    assert tl.trend.window_days == 7
    assert trend.dots(tl, history, TODAY) == "🟢⚪⚪⚪🟡⚪🔴"


def test_dots_ignore_order_old_and_future_records(tl: TrafficLight) -> None:
    history = [rec(-1, 9), rec(0, 1), rec(7, 9), rec(1, 4)]
    assert trend.dots(tl, reversed(history), TODAY) == "⚪⚪⚪⚪⚪🟡🟢"


def test_dots_take_the_last_record_of_a_day(tl: TrafficLight) -> None:
    assert trend.dots(tl, [rec(0, 9), rec(0, 1)], TODAY).endswith("🟢")


def test_dots_with_no_history_are_all_empty(tl: TrafficLight) -> None:
    assert trend.dots(tl, [], TODAY) == "⚪" * 7


def test_window_length_and_symbols_come_from_the_rules(tl: TrafficLight) -> None:
    rules = tl.trend.model_copy(update={"window_days": 3, "empty_symbol": "·"})
    short = tl.model_copy(update={"trend": rules})
    assert trend.dots(short, [rec(0, 0), rec(5, 9)], TODAY) == "··🟢"


def test_window_keeps_the_records(tl: TrafficLight) -> None:
    today = rec(0, 3)
    assert trend.window([today], TODAY, 2) == [None, today]


# ------------------------------------------------------------------ streaks


def test_streak_counts_consecutive_days_ending_today() -> None:
    history = [rec(0, 1), rec(1, 0), rec(2, 2), rec(3, 4), rec(4, 1)]
    assert trend.streak(history, TODAY, "green") == 3
    assert trend.streak(history, TODAY, "yellow") == 0


def test_a_gap_ends_the_streak() -> None:
    assert trend.streak([rec(0, 1), rec(2, 1), rec(3, 1)], TODAY, "green") == 1


def test_no_check_in_today_means_no_streak() -> None:
    assert trend.streak([rec(1, 1), rec(2, 1)], TODAY, "green") == 0


def test_green_streak_fires_at_the_configured_length(tl: TrafficLight) -> None:
    n = tl.trend.green_streak_days
    assert "green_streak" in kinds(tl, [rec(d, 1) for d in range(n)])
    assert "green_streak" not in kinds(tl, [rec(d, 1) for d in range(n - 1)])
    assert "green_streak" not in kinds(tl, [rec(d, 1) for d in range(n)] + [rec(0, 4)])


def test_red_streak_fires_at_the_configured_length(tl: TrafficLight) -> None:
    n = tl.trend.red_streak_days
    assert "red_streak" in kinds(tl, [rec(d, 8) for d in range(n)])
    assert "red_streak" not in kinds(tl, [rec(d, 8) for d in range(n - 1)])
    assert "red_streak" not in kinds(tl, [rec(0, 8), rec(2, 8), rec(3, 8)])


def test_morning_override_counts_as_red(tl: TrafficLight) -> None:
    history = [rec(0, 1, "red"), rec(1, 2, "red")]
    assert "red_streak" in kinds(tl, history)


# ------------------------------------------------------------------ no improvement


def test_no_improvement_fires_after_six_flat_weeks(tl: TrafficLight) -> None:
    assert tl.trend.no_improvement_weeks == 6
    history = weeks_of(4, 4)
    assert trend.no_improvement(tl, history, TODAY) == (4.0, 4.0)
    assert kinds(tl, history)[0] == "no_improvement"


def test_no_improvement_fires_when_getting_worse(tl: TrafficLight) -> None:
    found = trend.no_improvement(tl, weeks_of(3, 6), TODAY)
    assert found is not None
    assert found[1] > found[0]


def test_no_improvement_needs_the_full_span(tl: TrafficLight) -> None:
    assert trend.no_improvement(tl, weeks_of(4, 4, weeks=5), TODAY) is None


def test_no_improvement_needs_check_ins_in_the_first_week(tl: TrafficLight) -> None:
    history = [r for r in weeks_of(4, 4) if (TODAY - r.day).days < 35] + [rec(41, 4)]
    assert trend.no_improvement(tl, history, TODAY) is None
    assert trend.no_improvement(tl, [*history, rec(40, 4)], TODAY) is not None


def test_clear_improvement_is_not_flagged(tl: TrafficLight) -> None:
    assert trend.no_improvement(tl, weeks_of(6, 4), TODAY) is None


def test_small_improvement_is_still_flagged(tl: TrafficLight) -> None:
    history = [
        DayRecord(r.day, 4, "yellow") if (TODAY - r.day).days < 7 else r for r in weeks_of(5, 5)
    ]
    assert trend.no_improvement(tl, history, TODAY) == (5.0, 4.0)


def test_a_runner_back_in_green_is_not_flagged(tl: TrafficLight) -> None:
    assert trend.no_improvement(tl, weeks_of(1, 1), TODAY) is None
    assert trend.no_improvement(tl, weeks_of(2, 2), TODAY) is None


def test_weeks_rule_comes_from_the_rules(tl: TrafficLight) -> None:
    rules = tl.trend.model_copy(update={"no_improvement_weeks": 3})
    shorter = tl.model_copy(update={"trend": rules})
    assert trend.no_improvement(shorter, weeks_of(4, 4, weeks=3), TODAY) == (4.0, 4.0)
    assert trend.no_improvement(tl, weeks_of(4, 4, weeks=3), TODAY) is None


# ------------------------------------------------------------------ findings and texts


def test_first_check_in_and_quiet_weeks(tl: TrafficLight) -> None:
    assert kinds(tl, [rec(0, 4)]) == ["first"]
    assert kinds(tl, [rec(0, 4), rec(3, 6)]) == ["ok"]


def test_red_streak_and_no_improvement_both_fire(tl: TrafficLight) -> None:
    history = [*weeks_of(6, 6), rec(1, 7)]
    assert kinds(tl, history) == ["no_improvement", "red_streak"]


def test_no_improvement_text_sends_to_a_doctor(kb: Knowledge) -> None:
    text = trend.trend_text(kb, weeks_of(4, 4), TODAY, "proximal")
    assert "læge" in text
    assert "4,0/10" in text
    assert kb.text("checkin_trend_ok") not in text


def test_quiet_history_gets_encouragement_without_guilt(kb: Knowledge) -> None:
    text = trend.trend_text(kb, [rec(0, 4), rec(5, 3)], TODAY, None)
    assert text.endswith(kb.text("checkin_trend_ok"))
    assert "⚪" in text
    assert "læge" not in text


def test_streak_texts_use_the_guides_variant(kb: Knowledge) -> None:
    greens = [rec(d, 1) for d in range(3)]
    proximal = trend.trend_text(kb, greens, TODAY, "proximal")
    assert kb.text("checkin_trend_green_streak_proximal", days=3) in proximal
    assert kb.text("checkin_trend_green_streak", days=3) in trend.trend_text(
        kb, greens, TODAY, None
    )
    reds = [rec(d, 8) for d in range(2)]
    assert kb.text("checkin_trend_red_streak_distal", days=2) in trend.trend_text(
        kb, reds, TODAY, "distal"
    )
    assert kb.text("checkin_trend_red_streak", days=2) in trend.trend_text(kb, reds, TODAY, "hip")


def test_trend_text_starts_with_the_dots(kb: Knowledge) -> None:
    text = trend.trend_text(kb, [rec(0, 0)], TODAY, None)
    dots = trend.dots(kb.traffic_light, [rec(0, 0)], TODAY)
    assert text.startswith(kb.text("checkin_trend_line", days=7, dots=dots))


def test_every_finding_has_a_text(kb: Knowledge) -> None:
    for kind in ("no_improvement", "red_streak", "green_streak", "first", "ok"):
        for guide in (None, *kb.guides):
            text = trend.finding_text(kb, trend.Finding(kind), guide)
            assert text.strip()
