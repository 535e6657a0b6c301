"""The check-in state machine: buttons, typed answers, zones, summary and its texts."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot import checkin
from bot.checkin import (
    NOTE_MAX_CHARS,
    Draft,
    Step,
    answer,
    new_draft,
    parse_activity,
    parse_morning,
    parse_pain,
    prompt,
    record_of,
    summary,
    zone_of,
)
from bot.knowledge import TELEGRAM_TEXT_LIMIT, Knowledge, load_knowledge, load_vocabulary
from bot.records import DayRecord
from bot.replies import Reply

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2025, 3, 14)

VOCAB = load_vocabulary(ROOT / "knowledge")
PHASE1_TEXT = (
    "Isometrisk hofteekstension (liggende): Lig på maven med let bøjet knæ. Pres hælen ned i "
    "underlaget og hold spændingen i 30-45 sekunder. 3-5 gentagelser."
)
PHASE2_TEXT = (
    "Romanian deadlift (bilateral): Start med let vægt. Sænk vægten langsomt (3-4 sekunder) "
    "med let bøjede knæ. 3 sæt x 8-12 reps."
)


def _entry(eid: str, phase: int, title: str, text: str) -> dict[str, Any]:
    return {
        "id": eid,
        "title": title,
        "source": f"Fase {phase}",
        "text": text,
        "phase": phase,
        "examples": [f"øvelser fase {phase}", f"hvad skal jeg lave i fase {phase}"],
    }


def build_knowledge(
    root: Path,
    *,
    traffic_light: Callable[[dict[str, Any]], None] | None = None,
    sections: list[dict[str, Any]] | None = None,
) -> Knowledge:
    """A knowledge dir of the real guides, traffic light and check-in texts, plus a tiny guide."""
    kdir = root / "knowledge"
    (kdir / "texts").mkdir(parents=True)
    (root / "intents").mkdir()
    shutil.copytree(ROOT / "knowledge" / "guides", kdir / "guides")
    shutil.copytree(ROOT / "knowledge" / "lang", kdir / "lang")
    shutil.copy(ROOT / "knowledge" / "guides.yaml", kdir / "guides.yaml")
    shutil.copy(ROOT / "knowledge" / "texts" / "checkin.yaml", kdir / "texts" / "checkin.yaml")
    tl = yaml.safe_load((ROOT / "knowledge" / "traffic_light.yaml").read_text(encoding="utf-8"))
    if traffic_light:
        traffic_light(tl)
    (kdir / "traffic_light.yaml").write_text(
        yaml.safe_dump(tl, allow_unicode=True), encoding="utf-8"
    )
    red_flags = {
        "red_flags": [
            {
                "id": "natlige_smerter",
                "guides": ["proximal"],
                "guide_text": "Natlige smerter der vækker dig",
                "all_of": [["natten"], ["vækker"]],
                "examples": ["smerten vækker mig om natten"],
            }
        ]
    }
    (kdir / "red_flags.yaml").write_text(
        yaml.safe_dump(red_flags, allow_unicode=True), encoding="utf-8"
    )
    (kdir / "synonyms.yaml").write_text("synonyms: {}\n", encoding="utf-8")
    if sections is None:
        sections = [
            _entry("t_fase1", 1, "Fase 1: Symptomkontrol", PHASE1_TEXT),
            _entry("t_fase2", 2, "Fase 2: Progressiv belastning", PHASE2_TEXT),
        ]
    guide_file = {"guide": "proximal", "faq": [], "sections": sections}
    (kdir / "proximal.yaml").write_text(
        yaml.safe_dump(guide_file, allow_unicode=True), encoding="utf-8"
    )
    return load_knowledge(kdir, root / "intents")


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    return build_knowledge(tmp_path_factory.mktemp("kb"))


@pytest.fixture(scope="module")
def real_kb() -> Knowledge:
    return load_knowledge(ROOT / "knowledge", ROOT / "intents")


def _callbacks(reply: Reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row]


def _labels(reply: Reply) -> list[str]:
    return [b.label for row in reply.buttons for b in row]


def _at(step: Step) -> Draft:
    """A draft that has answered everything before `step`."""
    draft = new_draft()
    if step in (Step.MORNING, Step.ACTIVITY, Step.NOTE, Step.DONE):
        draft = replace(draft, pain=3)
    if step in (Step.ACTIVITY, Step.NOTE, Step.DONE):
        draft = replace(draft, morning="same")
    if step in (Step.NOTE, Step.DONE):
        draft = replace(draft, activity="run")
    return replace(draft, step=step)


# ------------------------------------------------------------------ questions and buttons


def test_new_draft_starts_at_pain_with_nothing_answered() -> None:
    assert new_draft() == Draft(step=Step.PAIN)


def test_pain_question_has_0_to_10_in_two_rows(kb: Knowledge) -> None:
    reply = prompt(kb, new_draft())
    assert reply.text == kb.text("checkin_q_pain")
    assert len(reply.buttons) == 2
    assert _labels(reply) == [str(n) for n in range(11)]
    assert _callbacks(reply) == [f"ci:p:{n}" for n in range(11)]


def test_morning_activity_and_note_buttons(kb: Knowledge) -> None:
    morning = prompt(kb, _at(Step.MORNING))
    assert morning.text == kb.text("checkin_q_morning")
    assert _callbacks(morning) == ["ci:m:better", "ci:m:same", "ci:m:worse"]
    assert _labels(morning) == [
        kb.text(f"checkin_btn_morning_{m}") for m in ("better", "same", "worse")
    ]
    activity = prompt(kb, _at(Step.ACTIVITY))
    assert _callbacks(activity) == ["ci:a:run", "ci:a:strength", "ci:a:rest", "ci:a:other"]
    assert kb.text("checkin_btn_activity_strength") in _labels(activity)
    note = prompt(kb, _at(Step.NOTE))
    assert _callbacks(note) == ["ci:n:skip"]
    assert _labels(note) == [kb.text("checkin_btn_note_skip")]
    assert prompt(kb, _at(Step.DONE)).buttons == ()


def test_every_callback_fits_telegram(kb: Knowledge) -> None:
    for step in Step:
        for data in _callbacks(prompt(kb, _at(step))):
            assert 1 <= len(data.encode()) <= 64


def test_buttons_walk_through_all_steps(kb: Knowledge) -> None:
    draft = new_draft()
    for callback in ("ci:p:7", "ci:m:better", "ci:a:strength", "ci:n:skip"):
        result = answer(kb, draft, callback=callback)
        assert result.understood
        assert result.reply is None
        draft = result.draft
    assert draft == Draft(Step.DONE, pain=7, morning="better", activity="strength", note=None)


def test_typed_answers_walk_through_all_steps(kb: Knowledge) -> None:
    draft = new_draft()
    for text in ("ca 4 ud af 10", "Som normalt", "lob", "  Let   bakke i dag  "):
        result = answer(kb, draft, text=text)
        assert result.understood, text
        draft = result.draft
    assert draft == Draft(Step.DONE, pain=4, morning="same", activity="run", note="Let bakke i dag")


@pytest.mark.parametrize(
    ("step", "callback"),
    [
        (Step.PAIN, "ci:m:worse"),
        (Step.PAIN, "ci:n:skip"),
        (Step.MORNING, "ci:p:3"),
        (Step.MORNING, "ci:a:run"),
        (Step.ACTIVITY, "ci:m:same"),
        (Step.NOTE, "ci:p:9"),
        (Step.NOTE, "ci:a:rest"),
    ],
)
def test_stale_button_reasks_current_question(kb: Knowledge, step: Step, callback: str) -> None:
    draft = _at(step)
    result = answer(kb, draft, callback=callback)
    assert not result.understood
    assert result.draft == draft
    assert result.reply is not None
    assert kb.text("checkin_hint_stale") in result.reply.text
    assert kb.text(f"checkin_q_{step.value}") in result.reply.text
    assert result.reply.buttons == prompt(kb, draft).buttons


@pytest.mark.parametrize(
    ("step", "callback"),
    [
        (Step.PAIN, "ci:p:11"),
        (Step.PAIN, "ci:p:-1"),
        (Step.PAIN, "ci:p:x"),
        (Step.MORNING, "ci:m:awful"),
        (Step.ACTIVITY, "ci:a:swim"),
        (Step.NOTE, "ci:n:later"),
    ],
)
def test_malformed_button_of_this_step_gets_hint(kb: Knowledge, step: Step, callback: str) -> None:
    draft = _at(step)
    result = answer(kb, draft, callback=callback)
    assert not result.understood
    assert result.draft == draft
    assert result.reply is not None
    assert kb.text(f"checkin_hint_{step.value}") in result.reply.text


@pytest.mark.parametrize("callback", ["pick:p_faq_loebe", "ci:p", "ci::", "", "ci:p:3:extra"])
def test_foreign_or_broken_callbacks_are_stale(kb: Knowledge, callback: str) -> None:
    result = answer(kb, new_draft(), callback=callback)
    assert not result.understood
    assert result.draft == new_draft()
    assert result.reply is not None
    assert kb.text("checkin_hint_stale") in result.reply.text


@pytest.mark.parametrize(
    ("step", "text"),
    [
        (Step.PAIN, "hvad mener du?"),
        (Step.PAIN, "11"),
        (Step.PAIN, ""),
        (Step.MORNING, "blå"),
        (Step.MORNING, "bedre men også værre"),
        (Step.ACTIVITY, "hmm"),
        (Step.NOTE, "   "),
    ],
)
def test_typed_nonsense_reasks_with_hint(kb: Knowledge, step: Step, text: str) -> None:
    draft = _at(step)
    result = answer(kb, draft, text=text)
    assert not result.understood
    assert result.draft == draft
    assert result.reply is not None
    assert result.reply.text.startswith(kb.text(f"checkin_hint_{step.value}"))
    assert kb.text(f"checkin_q_{step.value}") in result.reply.text
    assert "/annuller" in result.reply.text
    assert result.reply.buttons == prompt(kb, draft).buttons


def test_no_input_at_all_reasks(kb: Knowledge) -> None:
    result = answer(kb, new_draft())
    assert not result.understood
    assert result.reply is not None
    assert kb.text("checkin_hint_pain") in result.reply.text


def test_done_draft_takes_no_more_answers(kb: Knowledge) -> None:
    draft = _at(Step.DONE)
    for kwargs in ({"text": "5"}, {"callback": "ci:p:5"}):
        result = answer(kb, draft, **kwargs)
        assert not result.understood
        assert result.draft == draft
        assert result.reply is not None
        assert result.reply.text == kb.text("checkin_hint_done")


def test_hint_text_mentions_annuller_for_every_step(kb: Knowledge) -> None:
    for step in ("pain", "morning", "activity", "note", "stale"):
        assert "/annuller" in kb.text(f"checkin_hint_{step}")


# ------------------------------------------------------------------ notes


@pytest.mark.parametrize("text", ["spring over", "Spring over!", "nej tak", "skip", "-", "..."])
def test_typed_skip_leaves_no_note(kb: Knowledge, text: str) -> None:
    result = answer(kb, _at(Step.NOTE), text=text)
    assert result.understood
    assert result.draft.step is Step.DONE
    assert result.draft.note is None


def test_long_note_is_capped(kb: Knowledge) -> None:
    result = answer(kb, _at(Step.NOTE), text="ondt " * 400)
    assert result.understood
    assert result.draft.note is not None
    assert len(result.draft.note) == NOTE_MAX_CHARS
    assert result.draft.note.startswith("ondt ondt")


def test_note_keeps_danish_text(kb: Knowledge) -> None:
    result = answer(kb, _at(Step.NOTE), text="Ømt efter 5 km på grus, bedre efter opvarmning")
    assert result.draft.note == "Ømt efter 5 km på grus, bedre efter opvarmning"


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        (" 7 ", 7),
        ("0", 0),
        ("10", 10),
        ("fire", 4),
        ("Fire", 4),
        ("nul", 0),
        ("ti", 10),
        ("én", 1),
        ("en", 1),
        ("to", 2),
        ("4/10", 4),
        ("4 / 10", 4),
        ("4 ud af 10", 4),
        ("fire ud af ti", 4),
        ("4 af 10", 4),
        ("ca 3", 3),
        ("ca. 3", 3),
        ("cirka 3", 3),
        ("omkring 6 vil jeg sige", 6),
        ("3-4", 4),
        ("3 - 4", 4),
        ("3–4", 4),
        ("3 til 4", 4),
        ("tre til fire", 4),
        ("3 eller 4", 4),
        ("mellem 3 og 4", 4),
        ("3-4/10", 4),
        ("3,5", 4),
        ("3.5", 4),
        ("3½", 4),
        ("tre og en halv", 4),
        ("2.0", 2),
        ("en 3'er", 3),
        ("4er", 4),
        ("det var et 4-tal", 4),
        ("7!!", 7),
        ("ingen smerter", 0),
        ("ingen", 0),
        ("løb 5 km, smerte 3", 3),
        ("10/10", 10),
        ("0/10", 0),
    ],
)
def test_parse_pain_spellings(text: str, expected: int) -> None:
    assert parse_pain(VOCAB, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hej",
        "11",
        "100",
        "-1",
        "- 2",
        "3/5",
        "5 km",
        "3 i går og 5 i dag",
        "1e309",
        "ti tusind 11",
        "9" * 400,
    ],
)
def test_parse_pain_rejects_nonsense(text: str) -> None:
    assert parse_pain(VOCAB, text) is None


@given(st.text(max_size=60))
def test_parse_pain_never_raises_and_stays_in_range(text: str) -> None:
    result = parse_pain(VOCAB, text)
    assert result is None or 0 <= result <= 10


@given(st.integers(min_value=0, max_value=10))
def test_parse_pain_reads_every_score_back(n: int) -> None:
    assert parse_pain(VOCAB, str(n)) == n
    assert parse_pain(VOCAB, f"{n}/10") == n


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bedre", "better"),
        ("Bedre end normalt", "better"),
        ("mindre stiv", "better"),
        ("bedr", "better"),
        ("som normalt", "same"),
        ("samme", "same"),
        ("Uændret", "same"),
        ("uaendret", "same"),
        ("ikke værre", "same"),
        ("værre", "worse"),
        ("vaerre", "worse"),
        ("varre", "worse"),
        ("VÆRRE!", "worse"),
        ("mere stiv end normalt", "worse"),
        ("Lidt bedre end i går", "better"),
        ("normalt", "same"),
        ("ikke så godt", "worse"),
        ("ikke bedre", "same"),
        ("xyz", None),
        ("bedre men værre", None),
        ("", None),
    ],
)
def test_parse_morning(kb: Knowledge, text: str, expected: str | None) -> None:
    assert parse_morning(kb, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("løb", "run"),
        ("lob", "run"),
        ("loeb", "run"),
        ("Løbetur på 5 km", "run"),
        ("styrke", "strength"),
        ("styrketræning", "strength"),
        ("styrketræing", "strength"),
        ("mine øvelser", "strength"),
        ("hvile", "rest"),
        ("hviledag", "rest"),
        ("ikke løbet, bare hvilet", "rest"),
        ("andet", "other"),
        ("cykling", "other"),
        ("gik en tur", "other"),
        ("løb og styrke", "run"),
        ("ikke løbet", None),
        ("???", None),
    ],
)
def test_parse_activity(kb: Knowledge, text: str, expected: str | None) -> None:
    assert parse_activity(kb, text) == expected


@given(text=st.text(max_size=40))
def test_word_parsers_never_raise(kb: Knowledge, text: str) -> None:
    assert parse_morning(kb, text) in (None, "better", "same", "worse")
    assert parse_activity(kb, text) in (None, "run", "strength", "rest", "other")


# ------------------------------------------------------------------ zones


@pytest.mark.parametrize(
    ("pain", "morning", "zone"),
    [
        (0, "same", "green"),
        (2, "same", "green"),
        (3, "same", "yellow"),
        (5, "better", "yellow"),
        (6, "same", "red"),
        (10, None, "red"),
        (0, "worse", "red"),
        (2, "worse", "red"),
        (4, "worse", "red"),
    ],
)
def test_zone_boundaries_and_morning_override(
    kb: Knowledge, pain: int, morning: Any, zone: str
) -> None:
    assert zone_of(kb, Draft(Step.DONE, pain=pain, morning=morning)).id == zone


def test_zone_needs_a_pain_score(kb: Knowledge) -> None:
    with pytest.raises(ValueError, match="pain"):
        zone_of(kb, new_draft())


def test_thresholds_come_from_yaml(tmp_path: Path) -> None:
    def loosen(tl: dict[str, Any]) -> None:
        for zone in tl["zones"]:
            zone["max_pain"] = {"green": 3, "yellow": 6, "red": 10}[zone["id"]]
        tl["morning_worse_zone"] = "yellow"

    kb = build_knowledge(tmp_path, traffic_light=loosen)
    assert zone_of(kb, Draft(Step.DONE, pain=3, morning="same")).id == "green"
    assert zone_of(kb, Draft(Step.DONE, pain=6, morning="same")).id == "yellow"
    assert zone_of(kb, Draft(Step.DONE, pain=7, morning="same")).id == "red"
    assert zone_of(kb, Draft(Step.DONE, pain=0, morning="worse")).id == "yellow"


def test_record_of_carries_the_zone(kb: Knowledge) -> None:
    draft = Draft(Step.DONE, pain=1, morning="worse", activity="rest")
    assert record_of(kb, draft, TODAY) == DayRecord(TODAY, 1, "red", "worse", "rest")


# ------------------------------------------------------------------ summary


def _done(pain: int, morning: Any = "same") -> Draft:
    return Draft(Step.DONE, pain=pain, morning=morning, activity="run")


def test_summary_shows_zone_and_guide_advice(kb: Knowledge) -> None:
    text = summary(kb, _done(4), "distal", None, [], TODAY).text
    yellow = kb.traffic_light.zone("yellow")
    assert text.startswith(f"{yellow.symbol} {yellow.label}")
    assert "4/10" in text
    assert yellow.advice["distal"] in text
    assert yellow.advice["default"] not in text


@pytest.mark.parametrize("guide", [None, "unknown_guide"])
def test_summary_falls_back_to_default_advice(kb: Knowledge, guide: str | None) -> None:
    text = summary(kb, _done(8), guide, 1, [], TODAY).text
    assert kb.traffic_light.zone("red").advice["default"] in text


def test_summary_explains_morning_override_only_when_it_changed_the_zone(kb: Knowledge) -> None:
    overridden = summary(kb, _done(1, "worse"), None, None, [], TODAY).text
    red = kb.traffic_light.zone("red")
    assert overridden.startswith(f"{red.symbol} {red.label}")
    note = kb.text("checkin_summary_morning_override", symbol=red.symbol, label=red.label)
    assert note in overridden
    assert note not in summary(kb, _done(8, "worse"), None, None, [], TODAY).text
    assert note not in summary(kb, _done(1, "same"), None, None, [], TODAY).text


def test_summary_names_model_source(kb: Knowledge) -> None:
    assert "Silbernagel et al. 2007" in summary(kb, _done(0), None, None, [], TODAY).text


def test_green_zone_shows_the_phase_exercises_with_source(kb: Knowledge) -> None:
    text = summary(kb, _done(1), "proximal", 1, [], TODAY).text
    assert PHASE1_TEXT in text
    assert PHASE2_TEXT not in text
    assert kb.text("checkin_source", source=kb.guides["proximal"].source, section="Fase 1") in text


@pytest.mark.parametrize("pain", [3, 5, 7])
def test_no_exercises_outside_a_progression_zone(kb: Knowledge, pain: int) -> None:
    text = summary(kb, _done(pain), "proximal", 1, [], TODAY).text
    assert PHASE1_TEXT not in text
    assert PHASE2_TEXT not in text


def test_no_exercises_without_phase_or_guide_entries(kb: Knowledge) -> None:
    for guide, phase in (("proximal", None), (None, 1), ("hip", 1), ("proximal", 4)):
        text = summary(kb, _done(0), guide, phase, [], TODAY).text
        assert PHASE1_TEXT not in text
        assert PHASE2_TEXT not in text


def _greens(days: int) -> list[DayRecord]:
    return [DayRecord(TODAY - timedelta(days=d), 1, "green") for d in range(1, days + 1)]


def test_green_streak_points_to_the_next_phase(kb: Knowledge) -> None:
    streak = kb.traffic_light.trend.green_streak_days
    text = summary(kb, _done(0), "proximal", 1, _greens(streak - 1), TODAY).text
    assert PHASE2_TEXT in text
    assert PHASE1_TEXT not in text
    assert (
        kb.text(
            "checkin_exercises_next", days=streak, phase=2, title="Fase 2: Progressiv belastning"
        )
        in text
    )


def test_short_green_streak_keeps_the_current_phase(kb: Knowledge) -> None:
    streak = kb.traffic_light.trend.green_streak_days
    text = summary(kb, _done(0), "proximal", 1, _greens(streak - 2), TODAY).text
    assert PHASE1_TEXT in text
    assert PHASE2_TEXT not in text


def test_green_streak_in_last_phase_keeps_it(kb: Knowledge) -> None:
    text = summary(kb, _done(0), "proximal", 2, _greens(10), TODAY).text
    assert PHASE2_TEXT in text


def test_summary_replaces_a_stored_record_for_today(kb: Knowledge) -> None:
    stored = [DayRecord(TODAY, 9, "red"), DayRecord(TODAY - timedelta(days=1), 1, "green")]
    text = summary(kb, _done(1), None, None, stored, TODAY).text
    assert text.count("🔴") == 0
    assert "🟢🟢" in text


def test_summary_fits_one_telegram_message_with_a_long_quote(tmp_path: Path) -> None:
    guide_lines = (
        (ROOT / "knowledge" / "guides" / "proximal.txt").read_text(encoding="utf-8").splitlines()
    )
    start = next(i for i, line in enumerate(guide_lines) if line.startswith("Fase 1:"))
    lines: list[str] = []
    for line in guide_lines[start:]:
        if len("\n".join([*lines, line])) > 3700:
            break
        lines.append(line)
    long_entry = _entry("t_lang", 1, "Fase 1 i detaljer", "\n".join(lines))
    kb = build_knowledge(tmp_path, sections=[long_entry])
    text = summary(kb, _done(0), "proximal", 1, [], TODAY).text
    assert len(text) <= TELEGRAM_TEXT_LIMIT
    assert lines[0] in text
    assert lines[-1] not in text
    assert kb.text("checkin_source", source=kb.guides["proximal"].source, section="Fase 1") in text


# ------------------------------------------------------------------ texts


def test_every_literal_text_key_exists_in_real_knowledge(real_kb: Knowledge) -> None:
    source = "".join(
        (ROOT / "bot" / name).read_text(encoding="utf-8") for name in ("checkin.py", "trend.py")
    )
    literal = set(re.findall(r'"(checkin_[a-z_]+)"', source))
    assert literal, "expected text keys in the source"
    for key in literal:
        assert key in real_kb.texts or any(k.startswith(f"{key}_") for k in real_kb.texts), key


def test_typed_word_lists_exist_for_every_option(real_kb: Knowledge) -> None:
    for morning in checkin.MORNINGS:
        assert real_kb.vocab.words(f"morning_{morning}")
    for activity in checkin.ACTIVITIES:
        assert real_kb.vocab.words(f"activity_{activity}")
    for name in ("note_skip", "negators", "morning_ignore"):
        assert real_kb.vocab.words(name)


def test_every_built_key_exists_in_real_knowledge(real_kb: Knowledge) -> None:
    kb = real_kb
    for step in Step:
        prompt(kb, _at(step))
        answer(kb, _at(step), text="¤¤¤")
        answer(kb, _at(step), callback="ci:x:y")
    for pain in range(11):
        for morning in ("better", "same", "worse"):
            for guide in (None, *kb.guides):
                summary(kb, _done(pain, morning), guide, 1, _greens(3), TODAY)
    for zone in kb.traffic_light.zones:
        assert set(zone.advice) == {"default", *kb.guides}, zone.id
        assert "Silbernagel" in kb.traffic_light.source
