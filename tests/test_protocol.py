"""Button data: one encoder and decoder, the one-shot set and Telegram's 64-byte limit."""

from __future__ import annotations

import pytest

from bot import protocol
from bot.dialogs import routes


def test_encode_and_decode_round_trip() -> None:
    data = protocol.encode(protocol.CHECKIN, "p", 4)
    assert data == "ci:p:4"
    assert protocol.decode(data) == protocol.Press(protocol.CHECKIN, ("p", "4"))


def test_the_longest_prefix_wins() -> None:
    press = protocol.decode("ob:g:distal")
    assert press is not None and (press.route, press.fields) == (protocol.GUIDE, ("distal",))


@pytest.mark.parametrize("data", ["", "x" * 64, ":", "obx:1", "pickle:3", "fbx"])
def test_data_no_route_wrote_decodes_to_nothing(data: str) -> None:
    assert protocol.decode(data) is None


def test_over_64_bytes_is_refused_counting_utf8_bytes() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.encode(protocol.PICK, "æ" * 31)  # 5 + 62 bytes
    assert protocol.encode(protocol.PICK, "a" * 59)  # exactly 64


@pytest.mark.parametrize("field", ["", "a:b"])
def test_a_field_must_be_non_empty_and_hold_no_separator(field: str) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.encode(protocol.PICK, field)


def test_an_unknown_route_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.encode("zz", 1)


def test_prompt_buttons_are_one_shot_and_answers_are_not() -> None:
    assert protocol.is_one_shot("ob:c:1") and protocol.is_one_shot("ci:p:3")
    assert protocol.is_one_shot("del:1") and protocol.is_one_shot("rem:snooze")
    assert not protocol.is_one_shot("pick:p_faq_loebe") and not protocol.is_one_shot("fb:1:7")
    assert not protocol.is_one_shot("nonsense")


def test_every_route_has_a_handler() -> None:
    assert set(routes.BUTTONS) == set(protocol.ROUTES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17", 17),
        ("0", 0),
        ("2147483647", 2147483647),
        ("2147483648", None),
        ("9" * 18, None),
        ("9" * 19, None),
        ("-1", None),
        ("²", None),
        ("", None),
        ("1 ", None),
        ("١٢", None),
    ],
)
def test_an_id_field_is_a_short_run_of_ascii_digits(raw: str, expected: int | None) -> None:
    assert protocol.parse_id(raw) == expected


def test_a_day_field_round_trips_and_nonsense_is_no_day() -> None:
    from datetime import date

    assert protocol.parse_day(protocol.day(date(2026, 12, 1))) == date(2026, 12, 1)
    for raw in ("20261301", "2026121", "abcdefgh", "", "2026-12-01"):
        assert protocol.parse_day(raw) is None


@pytest.mark.parametrize("data", ["fb:1:" + "9" * 60, "pick:" + "æ" * 30, "ci:p:\ud800" * 10])
def test_data_over_64_bytes_is_no_button_of_ours(data: str) -> None:
    assert protocol.decode(data) is None


def test_a_lone_surrogate_within_the_limit_decodes_without_raising() -> None:
    press = protocol.decode("pick:\ud800")
    assert press is not None and press.fields == ("\ud800",)
