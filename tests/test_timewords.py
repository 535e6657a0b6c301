"""Clock times and pause lengths in the words users type."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.knowledge import load_vocabulary
from bot.settings import PROJECT_ROOT
from bot.timewords import (
    find_pause,
    find_reminder_time,
    mentions_reminder,
    parse_pause,
    parse_reminder_time,
)

VOCAB = load_vocabulary(PROJECT_ROOT / "knowledge")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07:30", time(7, 30)),
        ("7:30", time(7, 30)),
        ("7.30", time(7, 30)),
        ("7,30", time(7, 30)),
        ("7 30", time(7, 30)),
        ("730", time(7, 30)),
        ("0730", time(7, 30)),
        ("1915", time(19, 15)),
        ("kl 7", time(7, 0)),
        ("kl. 19.15", time(19, 15)),
        ("Kl. 07.30", time(7, 30)),
        ("klokken 6", time(6, 0)),
        ("19", time(19, 0)),
        ("0", time(0, 0)),
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        ("  8:05  ", time(8, 5)),
        ("7.30 om morgenen", time(7, 30)),
        ("7 om aftenen", time(19, 0)),
        ("kl 8 om aftenen", time(20, 0)),
        ("3 om eftermiddagen", time(15, 0)),
        ("19 om aftenen", time(19, 0)),
        ("12 om natten", time(0, 0)),
        ("7am", time(7, 0)),
        ("7 pm", time(19, 0)),
        ("ved 7-tiden", time(7, 0)),
        ("hver dag kl. 7.30!", time(7, 30)),
        ("halv otte", time(7, 30)),
        ("halv 8", time(7, 30)),
        ("halv otte om aftenen", time(19, 30)),
        ("kvart over syv", time(7, 15)),
        ("kvart i otte", time(7, 45)),
        ("fem i halv otte", time(7, 25)),
        ("ti over halv ni", time(8, 40)),
        ("otte", time(8, 0)),
        ("KL 21", time(21, 0)),
    ],
)
def test_parse_reminder_time_accepts(text: str, expected: time) -> None:
    assert parse_reminder_time(VOCAB, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "25:00",
        "24",
        "24:00",
        "7:61",
        "7.60",
        "2400",
        "99999",
        "7:3",
        "nonsense",
        "hej med dig",
        "kl",
        "i morgen",
        "7 8 9",
        "19 om morgenen",
        "-7",
        "7:30:99",
        "halv",
        "kvart over",
        "halv hundrede",
        "halv ¹",
        "²",
        "tres",
        "x" * 500,
    ],
)
def test_parse_reminder_time_rejects(text: str) -> None:
    assert parse_reminder_time(VOCAB, text) is None


@given(st.text(max_size=60))
def test_parse_reminder_time_never_raises(text: str) -> None:
    result = parse_reminder_time(VOCAB, text)
    assert result is None or isinstance(result, time)


@given(st.integers(0, 23), st.integers(0, 59))
def test_parse_reminder_time_round_trips_clock_formats(hour: int, minute: int) -> None:
    expected = time(hour, minute)
    assert parse_reminder_time(VOCAB, f"{hour:02d}:{minute:02d}") == expected
    assert parse_reminder_time(VOCAB, f"{hour}.{minute:02d}") == expected
    assert parse_reminder_time(VOCAB, f"kl. {hour}.{minute:02d}") == expected
    assert parse_reminder_time(VOCAB, f"{hour}{minute:02d}") == expected


@given(st.integers(24, 99), st.integers(0, 59))
def test_parse_reminder_time_rejects_any_impossible_hour(hour: int, minute: int) -> None:
    assert parse_reminder_time(VOCAB, f"{hour}:{minute:02d}") is None


@given(st.integers(0, 23), st.integers(60, 99))
def test_parse_reminder_time_rejects_any_impossible_minute(hour: int, minute: int) -> None:
    assert parse_reminder_time(VOCAB, f"{hour}:{minute}") is None


# ------------------------------------------------------------------------ parse_pause


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("3 dage", 3),
        ("1 dag", 1),
        ("en dag", 1),
        ("14d", 14),
        ("i 3 dage", 3),
        ("fem dage", 5),
        ("en uge", 7),
        ("1 uge", 7),
        ("uge", 7),
        ("to uger", 14),
        ("2 uger", 14),
        ("Tre Uger", 21),
        ("et par dage", 2),
        ("en måned", 30),
        ("en maaned", 30),
        ("365", 365),
        ("pause i en uge", 7),
    ],
)
def test_parse_pause_accepts(text: str, expected: int) -> None:
    assert parse_pause(VOCAB, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0 dage",
        "¹",
        "² uger",
        "366",
        "400 dage",
        "dage",
        "hej",
        "3 timer",
        "en uge og to dage",
        "-3",
        "2 år",
    ],
)
def test_parse_pause_rejects(text: str) -> None:
    assert parse_pause(VOCAB, text) is None


@given(st.text(max_size=60))
def test_parse_pause_never_raises_and_stays_in_range(text: str) -> None:
    result = parse_pause(VOCAB, text)
    assert result is None or 1 <= result <= 365


# ------------------------------------------------------------------------- local_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mind mig kl 19.15", time(19, 15)),
        ("mind mig kl. 7.30 hver dag", time(7, 30)),
        ("kan du minde mig om det klokken 18", time(18, 0)),
        ("/paamindelse 07:30", time(7, 30)),
        ("mind mig kvart over syv om aftenen", time(19, 15)),
        ("påmindelse tak", None),
        ("mind mig hver dag", None),
    ],
)
def test_find_reminder_time_in_a_sentence(text: str, expected: time | None) -> None:
    assert find_reminder_time(VOCAB, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pause påmindelser i 3 dage", 3),
        ("hold pause en uge", 7),
        ("stop påmindelser i to uger", 14),
        ("sæt påmindelserne på pause", None),
        ("pause", None),
    ],
)
def test_find_pause_in_a_sentence(text: str, expected: int | None) -> None:
    assert find_pause(VOCAB, text) == expected


@pytest.mark.parametrize(
    "text", ["mind mig halv otte", "hvornår minder du mig?", "Påmindelse kl. 6", "paamindelse"]
)
def test_a_message_about_reminders_is_recognised(text: str) -> None:
    assert mentions_reminder(VOCAB, text)


@pytest.mark.parametrize("text", ["hvornår må jeg løbe igen?", "halv otte", "mindre ondt"])
def test_a_message_not_about_reminders_is_not(text: str) -> None:
    assert not mentions_reminder(VOCAB, text)
