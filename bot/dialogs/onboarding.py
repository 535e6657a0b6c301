"""Onboarding and the user's profile: welcome, consent, guide and phase (/start, /guide, /fase).

Each prompt has one handler for its answer, typed or pressed, which returns None when
the message is no answer to it (the router then handles it as a message).
"""

from __future__ import annotations

from sqlalchemy import select

from bot import protocol
from bot.dialogs import states
from bot.dialogs.turn import Answer, Turn
from bot.knowledge import Knowledge
from bot.replies import Button, Reply
from bot.storage import Checkin, Question

PHASES = (1, 2, 3, 4)
PHASE_PROMPTS = frozenset({states.ONBOARDING_PHASE, states.CHOOSING_PHASE})
# A typed phase answer longer than this is a sentence about something else.
MAX_PHASE_ANSWER_WORDS = 6


# ------------------------------------------------------------------ welcome and consent


def done_text(kb: Knowledge, guide_id: str | None) -> str:
    """The end of onboarding, suggesting two questions the user's own guide answers."""
    guide = kb.guides.get(guide_id or "") or next(iter(kb.guides.values()))
    first, second = guide.try_asking
    return kb.text("onboarding_done", first=first, second=second)


def start(turn: Turn, _args: str = "") -> list[Reply]:
    name = f" {turn.msg.first_name}" if turn.msg.first_name else ""
    return [turn.say("welcome", name=name), *ask_consent(turn)]


def ask_consent(turn: Turn) -> list[Reply]:
    turn.open_prompt(states.ONBOARDING_CONSENT)
    yes = Button(turn.t("consent_yes_button"), protocol.encode(protocol.CONSENT, 1))
    no = Button(turn.t("consent_no_button"), protocol.encode(protocol.CONSENT, 0))
    return [Reply(turn.t("consent_question"), ((yes, no),))]


def require_consent(turn: Turn) -> list[Reply]:
    """The answer to anything that stores health data, for a user without consent."""
    return [turn.say("consent_required"), *ask_consent(turn)]


def consent(turn: Turn, answer: Answer) -> list[Reply] | None:
    yes = turn.yes_no(answer)
    if yes is None:
        return None
    user = turn.user
    if yes:
        user.consent = True
        user.consent_at = turn.now
        guest = turn.guests.guides.pop(user.id, None)
        if guest and not user.guide:
            user.guide = guest
        first = turn.say("consent_given")
    elif user.consent:
        # "Nej tak" at /start after consenting keeps everything as it is: withdrawing
        # consent is its own confirmed step (/samtykke), which says what happens.
        turn.close_prompt()
        return [turn.say("consent_kept")]
    else:
        stored = has_health_rows(turn)
        first = turn.say("consent_declined_stored" if stored else "consent_declined")
    return [first, *ask_guide(turn, states.ONBOARDING_GUIDE)]


def has_health_rows(turn: Turn) -> bool:
    """Are check-ins or questions of this user stored (from a consent since withdrawn)?"""
    for model in (Checkin, Question):
        found = turn.s.scalars(select(model.id).where(model.user_id == turn.user.id)).first()
        if found is not None:
            return True
    return False


# ------------------------------------------------------------------ guide


def change_guide(turn: Turn, _args: str = "") -> list[Reply]:
    return ask_guide(turn, states.CHOOSING_GUIDE)


def ask_guide(turn: Turn, state: str) -> list[Reply]:
    turn.open_prompt(state)
    rows = tuple(
        (Button(g.short, protocol.encode(protocol.GUIDE, g.id)),) for g in turn.kb.guides.values()
    )
    return [Reply(turn.t("guide_question"), rows)]


def _guide_named(turn: Turn, text: str) -> str | None:
    """The one guide the words name: its id or title, or its context words as the matcher
    reads them (lemmas, so "ballen" names the buttock guide), else None."""
    words = turn.words(text)
    said = " ".join(words)
    hits = set()
    for g in turn.kb.guides.values():
        for name in (" ".join(turn.words(n)) for n in (g.id, g.title)):
            if (name in words) if " " not in name else (name in said):
                hits.add(g.id)
    evidence = turn.matcher.evidence
    hits |= evidence.named_guides(turn.matcher.proc.analyse(text))
    return hits.pop() if len(hits) == 1 else None


def guide(turn: Turn, answer: Answer) -> list[Reply] | None:
    if answer.pressed:
        chosen = answer.value if answer.value in turn.kb.guides else None
    else:
        chosen = _guide_named(turn, answer.text)
    if chosen is None:
        return None
    state = turn.prompt
    turn.remember_guide(chosen)
    key = "guide_set" if turn.user.consent else "guide_changed_no_consent"
    confirm = turn.say(key, guide=turn.kb.guides[chosen].title.lower())
    if turn.user.consent and state == states.ONBOARDING_GUIDE:
        return [confirm, *ask_phase(turn, states.ONBOARDING_PHASE)]
    if turn.user.consent and state == states.CHOOSING_GUIDE:
        return [confirm, *ask_phase(turn, states.CHOOSING_PHASE)]  # /guide also asks the phase
    turn.close_prompt()
    if state == states.ONBOARDING_GUIDE:
        return [confirm, Reply(done_text(turn.kb, chosen))]
    return [confirm]


# ------------------------------------------------------------------ phase


def phases_text(turn: Turn, guide_id: str | None) -> str | None:
    """The guide's phases with their weeks and goal, from the guide's own phase sections."""
    if guide_id is None or guide_id not in turn.kb.guides:
        return None
    goal_labels = turn.kb.vocab.folded("goal_labels")
    lines = []
    for phase in PHASES:
        entry = next((e for e in turn.kb.entries_of(guide_id) if e.phase == phase), None)
        if entry is None:
            continue
        goal = next(
            (
                line.partition(":")[2].strip()
                for line in entry.text.splitlines()
                if " ".join(turn.words(line.partition(":")[0])) in goal_labels
            ),
            "",
        )
        key = "phase_line_goal" if goal else "phase_line"
        lines.append(turn.t(key, title=entry.title, goal=goal))
    return "\n".join(lines) if lines else None


def ask_phase(turn: Turn, state: str) -> list[Reply]:
    turn.open_prompt(state)

    def button(n: int) -> Button:
        return Button(turn.t("phase_button", phase=n), protocol.encode(protocol.PHASE, n))

    rows = (
        (button(1), button(2)),
        (button(3), button(4)),
        (Button(turn.t("phase_unknown_button"), protocol.encode(protocol.PHASE, 0)),),
    )
    text = turn.t("phase_question")
    if explained := phases_text(turn, turn.guide):
        text = f"{text}\n\n{explained}"
    return [Reply(text, rows)]


def change_phase(turn: Turn, args: str = "") -> list[Reply]:
    """/fase: the phases of the user's guide explained, and a choice of phase.

    "/fase 3" sets the phase at once; said in words ("skift fase") it only asks, so a
    sentence that mentions a phase never changes it by itself.
    """
    if not turn.user.consent:
        explained = phases_text(turn, turn.guide)
        return [Reply(explained), *require_consent(turn)] if explained else require_consent(turn)
    if turn.guide is None:
        return [turn.say("phase_needs_guide"), *ask_guide(turn, states.CHOOSING_GUIDE)]
    state = turn.prompt if turn.prompt in PHASE_PROMPTS else states.CHOOSING_PHASE
    turn.open_prompt(state)
    if turn.msg.kind == "command" and args.strip():
        chosen = phase(turn, Answer(args))
        if chosen is not None:
            return chosen
    return ask_phase(turn, state)


def _typed_phase(turn: Turn, text: str) -> int | None:
    """1-4 from "3", "fase tre", "den tredje"; 0 for "ved ikke"; None for anything else."""
    words = turn.words(text)
    said = " ".join(words)
    if said in turn.kb.vocab.folded("dont_know_words"):
        return 0
    vocab = turn.kb.vocab
    if "?" in text or not words or len(words) > MAX_PHASE_ANSWER_WORDS:
        return None
    if words[0] in vocab.folded("question_words"):
        return None
    numbers = {**vocab.folded_mapping("number_words"), **vocab.folded_mapping("ordinals")}
    found = {int(w) if w.isdigit() else numbers[w] for w in words if w.isdigit() or w in numbers}
    return found.pop() if len(found) == 1 and found <= set(PHASES) else None


def phase(turn: Turn, answer: Answer) -> list[Reply] | None:
    if not turn.user.consent:
        return None
    if answer.pressed:
        chosen = int(answer.value) if answer.value in {"0", *map(str, PHASES)} else None
    else:
        chosen = _typed_phase(turn, answer.text)
    if chosen is None:
        return None
    onboarding = turn.prompt != states.CHOOSING_PHASE
    turn.close_prompt()
    turn.user.phase = chosen or None
    first = turn.say("phase_set", phase=chosen) if chosen else turn.say("phase_skipped")
    return [first, Reply(done_text(turn.kb, turn.guide))] if onboarding else [first]
