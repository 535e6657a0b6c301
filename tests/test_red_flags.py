"""Red flags: the guides' warning signs fire on what runners write, and not on near misses."""

from __future__ import annotations

import pytest

from bot.answers import render
from bot.ask import shared

KB, MATCHER = shared()

FLAG_EXAMPLES = [
    pytest.param(rf.id, ex, id=f"{rf.id}-{i}")
    for rf in KB.red_flags
    for i, ex in enumerate(rf.examples)
]
FLAG_NOT_EXAMPLES = [
    pytest.param(rf.id, ex, id=f"{rf.id}-not-{i}")
    for rf in KB.red_flags
    for i, ex in enumerate(rf.not_examples)
]


@pytest.mark.parametrize(("flag_id", "text"), FLAG_EXAMPLES)
def test_examples_fire(flag_id: str, text: str) -> None:
    assert flag_id in MATCHER.red_flags(text)


@pytest.mark.parametrize(("flag_id", "text"), FLAG_NOT_EXAMPLES)
def test_not_examples_do_not_fire(flag_id: str, text: str) -> None:
    assert flag_id not in MATCHER.red_flags(text)


def test_all_warning_signs_of_both_hamstring_guides_are_covered() -> None:
    for guide in ("proximal", "distal"):
        text = KB.guide_texts[guide]
        block = text[text.index("Søg læge hvis du oplever:") :].splitlines()[1:]
        signs = []
        for line in block:
            if not line.startswith("- "):
                break
            signs.append(line.removeprefix("- ").split(" (")[0])
        covered = {rf.guide_text for rf in KB.red_flags if guide in rf.guides}
        missing = [s for s in signs if not any(c in s or s in c for c in covered)]
        assert signs and missing == [], (guide, missing)


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("ingen bedring efter 7 uger", True),
        ("ingen bedring efter to måneder", True),
        ("ingen bedring efter 2 uger", False),
        ("ingen bedring efter 5 dage", False),
    ],
)
def test_min_weeks(text: str, fires: bool) -> None:
    assert ("ingen_bedring" in MATCHER.red_flags(text)) is fires


@pytest.mark.parametrize(
    "text",
    [
        "det vækker mig ikke om natten",
        "det gør ondt om natten, men det vækker mig ikke",
        "jeg har ingen prikken eller nummenhed",
        "knæet er ikke hævet og ikke rødt",
    ],
)
def test_negated_signs_do_not_fire(text: str) -> None:
    assert MATCHER.red_flags(text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "SMERTEN VÆKKER MIG OM NATTEN",
        "smerten vaekker mig om natten",
        "smerten vækker mig om natten 😩",
        "the pain wakes me at night",
    ],
)
def test_case_diacritics_emoji_and_english_still_fire(text: str) -> None:
    assert "natlige_smerter" in MATCHER.red_flags(text)


def test_reply_gives_the_doctor_advice_first_then_the_answer() -> None:
    decision = MATCHER.decide(
        "kan jeg løbe med ondt under ballen, smerten vækker mig om natten", "proximal"
    )
    assert decision.kind == "red_flag"
    assert "natlige_smerter" in decision.red_flags
    text = render(KB, decision).text
    flag = next(rf for rf in KB.red_flags if rf.id == "natlige_smerter")
    assert "læge" in text
    assert flag.guide_text in text
    if decision.entry_id is not None:
        answer = KB.entries[decision.entry_id].text.strip()
        assert text.index("læge") < text.index(answer)


def test_red_flag_without_a_question_is_still_advice() -> None:
    decision = MATCHER.decide("rødt varmt knæ")
    assert decision.kind == "red_flag"
    assert "læge" in render(KB, decision).text


@pytest.mark.parametrize(
    ("text", "flag_id"),
    [
        # The "ikke" belongs to the following clause, not to "om natten".
        ("knæet gør så ondt om natten at jeg ikke kan sove", "natlige_smerter"),
        ("min fod sover når jeg løber og det gør ondt ved siddeknoglen", "nerve_ben"),
        ("blev ramt af en bil og nu har jeg ondt under ballen", "traume"),
        ("knæet har været hævet i tre uger og bliver ikke mindre", "haevelse_knae"),
        ("har lavet øvelserne i 10 uger uden at det er blevet bedre", "ingen_bedring"),
    ],
)
def test_warning_signs_in_everyday_wording_fire(text: str, flag_id: str) -> None:
    assert flag_id in MATCHER.red_flags(text)


@pytest.mark.parametrize(
    "text",
    [
        "hvor mange timer skal jeg sove for at senen heler",
        "det gør ondt om natten men jeg sover fint igennem",
    ],
)
def test_sleep_questions_are_not_nerve_or_night_flags(text: str) -> None:
    assert not {"nerve_ben", "nerve_underben", "natlige_smerter"} & set(MATCHER.red_flags(text))
