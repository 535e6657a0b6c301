"""The whole dialogue in one table: prompt state -> handler, action -> handler, button -> handler.

A prompt's `answer` takes the user's answer, typed or pressed, and returns the replies
(None: that message is no answer to it). `ask` puts the question again; `again` says
what was not understood and puts the question again. Actions are the commands of
bot/dialogs/commands.py, reached by "/name" or by an intent. A button reaches the handler
its route (bot/protocol.py) names; a button bound to prompts is void at any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot import protocol
from bot.dialogs import checkin, commands, data_rights, onboarding, questions, reminders, states
from bot.dialogs.turn import Answer, Turn
from bot.replies import Reply

AnswerHandler = Callable[[Turn, Answer], "list[Reply] | None"]
Asker = Callable[[Turn], list[Reply]]


@dataclass(frozen=True)
class Prompt:
    answer: AnswerHandler
    ask: Asker
    again: Asker


@dataclass(frozen=True)
class ButtonRoute:
    handler: AnswerHandler
    prompts: frozenset[str] | None = None  # None: pressable whatever is open


def _hinted(hint_key: str, ask: Asker) -> Asker:
    return lambda turn: [turn.say(hint_key), *ask(turn)]


def _guide_at(state: str) -> Asker:
    return lambda turn: onboarding.ask_guide(turn, state)


def _phase_at(state: str) -> Asker:
    return lambda turn: onboarding.ask_phase(turn, state)


def _prompt(answer: AnswerHandler, ask: Asker, hint_key: str | None = None) -> Prompt:
    return Prompt(answer, ask, _hinted(hint_key, ask) if hint_key else ask)


STATES: dict[str, Prompt] = {
    states.ONBOARDING_CONSENT: _prompt(onboarding.consent, onboarding.ask_consent, "consent_hint"),
    states.ONBOARDING_GUIDE: _prompt(
        onboarding.guide, _guide_at(states.ONBOARDING_GUIDE), "guide_hint"
    ),
    states.CHOOSING_GUIDE: _prompt(
        onboarding.guide, _guide_at(states.CHOOSING_GUIDE), "guide_hint"
    ),
    states.ONBOARDING_PHASE: _prompt(
        onboarding.phase, _phase_at(states.ONBOARDING_PHASE), "phase_hint"
    ),
    states.CHOOSING_PHASE: _prompt(
        onboarding.phase, _phase_at(states.CHOOSING_PHASE), "phase_hint"
    ),
    states.CONFIRM_DELETE: _prompt(data_rights.confirm_delete, data_rights.ask_delete),
    states.CONFIRM_REPLACE: _prompt(checkin.confirm_replace, checkin.ask_replace),
    states.CONFIRM_WITHDRAW: _prompt(data_rights.confirm_withdraw, data_rights.ask_withdraw),
}
# The open check-in is a prompt too; its state is the step stored in its row.
CHECKIN = Prompt(checkin.step, checkin.ask_step, checkin.hint_step)

ACTIONS: dict[str, Callable[[Turn, str], list[Reply]]] = {
    c.action: c.handler for c in commands.COMMANDS
}

BUTTONS: dict[str, ButtonRoute] = {
    protocol.CONSENT: ButtonRoute(onboarding.consent, frozenset({states.ONBOARDING_CONSENT})),
    protocol.GUIDE: ButtonRoute(onboarding.guide),
    protocol.PHASE: ButtonRoute(onboarding.phase, onboarding.PHASE_PROMPTS),
    protocol.CHECKIN: ButtonRoute(checkin.step),
    protocol.REPLACE: ButtonRoute(checkin.confirm_replace, frozenset({states.CONFIRM_REPLACE})),
    protocol.DELETE: ButtonRoute(data_rights.confirm_delete, frozenset({states.CONFIRM_DELETE})),
    protocol.PICK: ButtonRoute(questions.pick),
    protocol.FEEDBACK: ButtonRoute(questions.feedback),
    protocol.REMINDER: ButtonRoute(reminders.pressed),
    protocol.WITHDRAW: ButtonRoute(
        data_rights.confirm_withdraw, frozenset({states.CONFIRM_WITHDRAW})
    ),
}
