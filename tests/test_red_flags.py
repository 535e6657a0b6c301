"""Red flags: the guides' warning signs fire on what runners write, and not on near misses."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from bot.answers import render
from bot.ask import shared
from bot.matching.red_flags import Durations, RedFlags, _easter
from bot.schemas import Temperature

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
    # No flag at all: a near miss of one sign is no other sign either (eval counts any).
    assert MATCHER.red_flags(text) == (), flag_id


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


# ------------------------------------------------------------------ how long it has lasted

DEC_2 = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("i 7 uger", 49),
        ("efter 8 ugers genoptræning", 56),
        ("i et par måneder", 60),
        ("i et par uger", 14),
        ("i flere måneder", 90),
        ("i måneder", 60),
        ("i over en måned", 45),
        ("i mere end en måned", 45),
        ("i over 5 uger", 38.5),
        ("i halvandet år", 547.5),
        ("i et halvt år", 182.5),
        ("i halvanden måned", 45),
        ("i et år og et halvt", 547.5),
        ("for half a year", 182.5),
        ("for a couple of months", 60),
        ("i snart tre måneder", 90),
        ("i månedsvis", 90),
        ("siden sidste måned", 30),
        ("siden februar", 304),
        ("siden starten af november", 31),
        ("siden slutningen af oktober", 38),
        ("siden d. 3. oktober", 60),
        ("siden nytår", 335),
        ("siden jul", 343),
        ("siden sommerferien", 154),
        ("siden påske", 241),  # Easter Sunday 2026 is 5 April
        ("siden december", 1),
        ("since christmas", 342),
        ("siden 2025", 700),
    ],
)
def test_durations_in_days(text: str, days: float) -> None:
    durations = Durations(KB, MATCHER.proc)
    assert max(durations.days(MATCHER.proc.analyse(text).tokens, DEC_2)) == days


@pytest.mark.parametrize(
    "text",
    ["har ondt i siden", "siden du spørger, så gør det ondt", "ingen bedring"],
)
def test_no_duration_without_a_unit_or_a_date(text: str) -> None:
    assert Durations(KB, MATCHER.proc).days(MATCHER.proc.analyse(text).tokens, DEC_2) == []


@pytest.mark.parametrize(
    ("text", "today", "fires"),
    [
        ("ingen bedring siden februar", date(2026, 3, 1), False),
        ("ingen bedring siden februar", date(2026, 4, 15), True),
        ("har lavet øvelserne siden jul og intet hjælper", date(2027, 1, 10), False),
        ("har lavet øvelserne siden jul og intet hjælper", date(2027, 2, 20), True),
        ("stadig ondt siden påske trods øvelser", date(2026, 5, 1), False),
        ("stadig ondt siden påske trods øvelser", date(2026, 6, 1), True),
        ("ikke blevet bedre siden nytår", date(2026, 2, 1), False),
        ("ikke blevet bedre siden nytår", date(2026, 3, 1), True),
        ("samme smerter siden sommerferien", date(2026, 8, 1), False),
        ("samme smerter siden sommerferien", date(2026, 9, 1), True),
        ("ingen bedring siden starten af oktober", DEC_2, True),
        ("ingen bedring siden slutningen af oktober", DEC_2, False),
        ("ingen fremgang i et halvt år", DEC_2, True),
        ("ingen fremgang i halvandet år", DEC_2, True),
        ("ingen fremgang i et par måneder", DEC_2, True),
        ("ingen fremgang i et par uger", DEC_2, False),
        ("ingen fremgang i flere måneder", DEC_2, True),
        ("ingen fremgang i over en måned", DEC_2, True),
        ("ingen fremgang i over 5 uger", DEC_2, False),
        ("intet hjælper i snart tre måneder", DEC_2, True),
    ],
)
def test_min_weeks_reads_date_spans_against_the_given_day(
    text: str, today: date, fires: bool
) -> None:
    assert ("ingen_bedring" in MATCHER.red_flags(text, today)) is fires


def test_the_clock_is_injected_not_read() -> None:
    flags = RedFlags(KB, MATCHER.proc, clock=lambda: date(2026, 3, 1))
    analysis = MATCHER.proc.analyse("ingen bedring siden februar")
    assert flags.find(analysis) == ()
    assert flags.find(analysis, date(2026, 4, 15)) == ("ingen_bedring",)


def test_decisions_are_cached_per_day() -> None:
    text = "ingen bedring siden februar, hvad gør jeg"
    assert MATCHER.decide(text, None, date(2026, 2, 20)).kind != "red_flag"
    assert MATCHER.decide(text, None, date(2026, 5, 1)).kind == "red_flag"


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert _easter(year) == easter


def test_the_hip_guides_warning_signs_are_covered() -> None:
    # Locking is quoted from the hip guide; a fracture after a fall shares the fall flag.
    hip_flags = {rf.id: rf for rf in KB.red_flags if "hip" in rf.guides}
    assert hip_flags["laasning_hofte"].guide_text in KB.guide_texts["hip"]
    assert "traume" in hip_flags
    assert "laasning_hofte" in MATCHER.red_flags("hoften går i lås og det skærer i lysken")
    assert "traume" in MATCHER.red_flags("faldt på isen og landede på hoften")


@pytest.mark.parametrize(
    ("text", "flag_id"),
    [
        ("hvad hvis knæet begynder at låse", "laasning"),
        ("hvad hvis det pludselig hæver op og bliver blåt", "akut_skade"),
        ("what if my hip locks while running", "laasning_hofte"),
        ("hvad gør jeg hvis jeg får nummenhed i foden", "nerve_ben"),
    ],
)
def test_a_hypothetical_question_is_no_sign(text: str, flag_id: str) -> None:
    assert flag_id not in MATCHER.red_flags(text)


@pytest.mark.parametrize(
    "text",
    [
        "har haft ondt i 4 måneder og tør ikke løbe af frygt for at det bliver værre",
        "ondt under ballen i 5 måneder, jeg er bange for at det bliver værre hvis jeg løber",
        "scared it will get worse, been 3 months of pain under the butt",
    ],
)
def test_a_feared_worsening_is_no_sign_of_one(text: str) -> None:
    assert "ingen_bedring" not in MATCHER.red_flags(text)


@pytest.mark.parametrize(
    ("text", "flag_id"),
    [
        # The fear ends at "for" / "og": what follows is told, not feared.
        (
            "har lavet øvelser i 10 uger og er bange for at løbe for det gør stadig lige ondt",
            "ingen_bedring",
        ),
        (
            "er bange for at det bliver værre og det har ikke hjulpet noget i 8 uger",
            "ingen_bedring",
        ),
        ("har trænet i 10 uger uden bedring og er bange for at det bliver værre", "ingen_bedring"),
        # Only flags about a change opt in: a feared tear still comes with its bruise.
        ("jeg frygter at hamstringen er sprængt for det er hævet og blåt", "akut_skade"),
        ("jeg er bange for at jeg har revet baglåret over det blev helt blåt", "akut_skade"),
    ],
)
def test_a_fear_does_not_hide_a_sign_told_beside_it(text: str, flag_id: str) -> None:
    assert flag_id in MATCHER.red_flags(text)


@pytest.mark.parametrize(
    ("text", "flag_id"),
    [
        # The question comes after the sign, in its own clause: the sign still counts.
        ("knæet låser sig fast, hvad hvis det er menisken", "laasning"),
        # The negator negates what follows it, not the body part before the verb.
        ("hævelsen i knæet vil ikke gå ned", "haevelse_knae"),
        # "ingen" belongs to "appetit", not back across "og" to "tabt mig".
        ("har tabt mig og har ingen appetit og ondt i hoften", "vaegttab"),
    ],
)
def test_a_negator_or_question_elsewhere_does_not_hide_the_sign(text: str, flag_id: str) -> None:
    assert flag_id in MATCHER.red_flags(text)


@pytest.mark.parametrize(
    "text",
    [
        "knæet låser sig ikke",
        "det vækker mig ikke længere",
        "foden sover ikke",
    ],
)
def test_a_negator_right_after_still_negates(text: str) -> None:
    assert MATCHER.red_flags(text) == ()


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("har lavet øvelserne siden jeg startede i september", 92),
        ("since I started rehab in March", 276),
    ],
)
def test_a_date_a_few_words_after_since(text: str, days: float) -> None:
    durations = Durations(KB, MATCHER.proc)
    assert max(durations.days(MATCHER.proc.analyse(text).tokens, DEC_2)) == days


def test_a_date_in_the_next_clause_is_not_the_span() -> None:
    text = "har ondt i siden, i februar skal jeg løbe maraton"
    assert Durations(KB, MATCHER.proc).days(MATCHER.proc.analyse(text).tokens, DEC_2) == []


@pytest.mark.parametrize(
    ("text", "flag_id"),
    [
        # A denied sign before "og" does not deny the sign after it.
        ("ikke hævet og vækker mig om natten", "natlige_smerter"),
        ("har ingen prikken og vågner af smerterne om natten", "natlige_smerter"),
        ("ingen hævelse men det vækker mig om natten", "natlige_smerter"),
        ("ingen nummenhed men knæet låser sig fast", "laasning"),
    ],
)
def test_a_denied_other_sign_does_not_deny_this_one(text: str, flag_id: str) -> None:
    assert flag_id in MATCHER.red_flags(text)


def test_a_typo_guess_cannot_trigger_an_exclusion() -> None:
    # "nasty" is corrected to "næsten"; "faldt næsten" (almost fell) must not hide the fall.
    assert "traume" in MATCHER.red_flags("took a nasty fall on the ice and now my hip hurts")
    assert "traume" not in MATCHER.red_flags("jeg faldt næsten på isen, men hoften er fin")


@pytest.mark.parametrize(
    ("text", "flag_id", "guide"),
    [
        ("jeg kan ikke støtte på benet", "kan_ikke_belaste", "hip"),
        ("can't put weight on it", "kan_ikke_belaste", "hip"),
        ("min søn på 5 har ondt i hoften og har feber", "feber", "distal"),
        ("feverish with a sore swollen knee", "feber", "distal"),
    ],
)
def test_new_signs_quote_the_guides_own_words(text: str, flag_id: str, guide: str) -> None:
    assert flag_id in MATCHER.red_flags(text)
    flag = next(rf for rf in KB.red_flags if rf.id == flag_id)
    assert flag.guide_text in KB.guide_texts[guide]


@pytest.mark.parametrize(
    "text",
    [
        "kan ikke gå i fitness i dag, hvad kan jeg lave hjemme",
        "jeg kan godt støtte på benet, det gør bare lidt ondt",
        "må man løbe med feber",
        "hvad gør man hvis baglåret pludselig bliver blåt",
    ],
)
def test_near_misses_of_the_new_signs(text: str) -> None:
    assert MATCHER.red_flags(text) == ()


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        # "uden" and English "didn't" negate what follows them ...
        ("pludselig smerte uden hævelse", False),
        ("I didn't fall, it just started hurting", False),
        # ... not what came before: the weight loss is affirmed.
        ("har tabt 6 kg uden at prøve, og ondt i baglåret", True),
        # A double negative affirms.
        ("kan ikke ligge på siden om natten uden at vågne af smerter i hoften", True),
        # A negator reaches along a list of items.
        ("fik et ryk i baglåret, ingen tegn på hævelse eller blå mærker", False),
    ],
)
def test_forward_negators_and_lists(text: str, fires: bool) -> None:
    assert bool(MATCHER.red_flags(text)) is fires


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        # A temperature written as a number is a fever: a decimal, or a whole number after "har".
        ("har 38,9 og hoften dunker", True),
        ("målte 39.4 i nat og knæet er ømt", True),
        ("har 39 og ondt i hoften", True),
        ("temp 39 and my hip hurts", True),
        # Dictated: "komma" between the parts.
        ("38 komma 9 og knæet er hævet", True),
        # Ages, distances, weeks and temperatures below the range are not.
        ("jeg er 39 og har ondt i hoften", False),
        ("løb 38,5 km og nu gør hoften ondt", False),
        ("i uge 39 fik jeg ondt i hoften", False),
        ("har 37,2 og hoften er øm", False),
    ],
)
def test_a_temperature_written_as_a_number(text: str, fires: bool) -> None:
    assert ("feber" in MATCHER.red_flags(text)) is fires


@pytest.mark.parametrize(
    "text",
    [
        "det startede ikke med et knald, og der er ikke noget der er hævet",
        "ingen knald, og jeg kan ikke se nogen hævelse",
    ],
)
def test_a_negator_reaches_across_an_indefinite_pronoun(text: str) -> None:
    assert MATCHER.red_flags(text) == ()


def test_a_temperature_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="min must be below max"):
        Temperature(min=42.0, max=38.0)


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        # An exclusion explains the sign away ...
        ("har tabt 5 kg fordi jeg har ændret min kost, og hoften gør ondt", False),
        # ... unless it is denied itself.
        ("jeg har ikke ændret kost, men har tabt 5 kg uden at prøve, og hoften gør ondt", True),
        # An exclusion that is a denial ("ingen hævelse") still excludes.
        ("pludselig smerte i baglåret, ingen hævelse", False),
    ],
)
def test_a_denied_exclusion_does_not_exclude(text: str, fires: bool) -> None:
    assert bool(MATCHER.red_flags(text)) is fires


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        # Up to two intensifiers may stand inside a sign's phrase ...
        ("har haft ondt i hoften i 2 måneder og det bliver bare værre", True),
        ("benet føles helt vildt svagt og ondt i ballen", True),
        # ... a softener may not: the shoe slips, the runner does not.
        ("mine løbesko gled lidt i hælen", False),
    ],
)
def test_intensifiers_inside_a_phrase(text: str, fires: bool) -> None:
    assert bool(MATCHER.red_flags(text)) is fires
