"""The order of decisions for one turn, reading bot/dialogs/routes.py.

1. a stale check-in or prompt expires;
2. a button reaches its route's handler; a /command its registry entry;
3. typed text at an open prompt (or check-in step) is offered to it as an answer, after
   any red-flag advice; text with a red flag that is no answer gets the advice and the
   prompt again (every time); other text that is no answer is handled as a message
   (intents, questions) and the prompt is asked again once; nonsense gets the prompt's hint;
4. intents, then the knowledge (answer, clarify, fallback).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot import protocol, timewords
from bot.answers import red_flag_text
from bot.dialogs import checkin, commands, deeplinks, questions, reminders, routes
from bot.dialogs.routes import Prompt
from bot.dialogs.turn import Answer, Turn
from bot.replies import Reply

if TYPE_CHECKING:
    from bot.matching import Decision

CANCEL = "cancel"
# Up to this many words, typed text at a prompt that means nothing is a failed answer.
SHORT_ANSWER_WORDS = 3


def clean(text: str) -> str:
    """Drop control and format characters that phones and bad clients slip in."""
    kept = (ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "".join(kept).strip()


def run(turn: Turn) -> list[Reply]:
    """The replies to one incoming message.

    In a group nothing personal is said or asked: no open prompt takes the message, no
    prompt is asked again, and personal commands and buttons get a link to the private chat.
    """
    pre = checkin.expire_stale(turn) if turn.private else []
    if turn.prompt_expired():
        turn.close_prompt()
    msg = turn.msg
    if msg.kind == "unsupported":
        key = f"unsupported_{msg.media}"
        replies = [turn.say(key if key in turn.kb.texts else "unsupported_message")]
    elif msg.kind == "callback":
        replies = on_button(turn, msg.callback or "")
    elif msg.kind == "command":
        replies = on_command(turn, msg.command or "", msg.args)
    else:
        replies = on_text(turn, clean(msg.text))
    return [*pre, *replies]


def on_button(turn: Turn, data: str) -> list[Reply]:
    press = protocol.decode(data)
    route = routes.BUTTONS.get(press.route) if press else None
    if press is None or route is None:
        return [turn.say("button_expired")]
    if not turn.private and press.route not in protocol.PUBLIC_ROUTES:
        return deeplinks.private_only(turn, deeplinks.BUTTON_PAYLOADS.get(press.route, "start"))
    if route.prompts and turn.prompt not in route.prompts:
        return [turn.say("button_expired")]
    replies = route.handler(turn, Answer(fields=press.fields, pressed=True))
    return replies if replies is not None else [turn.say("button_expired")]


def on_command(turn: Turn, name: str, args: str) -> list[Reply]:
    command = commands.find(name)
    if command is None:
        return [turn.say("unknown_command")]
    if command.admin and turn.user.id not in turn.settings.admin_ids:
        return [turn.say("not_admin")]
    target = _deep_link_target(turn, command, args)
    if target is not None:
        command, args = target, ""
    action = command.action
    return _beside_open_prompt(turn, action, lambda: act(turn, action, args))


def _deep_link_target(turn: Turn, command: commands.Command, args: str) -> commands.Command | None:
    """ "/start checkin" from a group's link: the command the payload names (not /start)."""
    if command.action != "start" or not turn.private:
        return None
    payload = deeplinks.payload_of(args)
    target = commands.find(payload) if payload else None
    if target is None or target.admin or target.action == "start":
        return None
    return target


def act(turn: Turn, action: str, args: str) -> list[Reply]:
    """Run an action of the registry (from a /command or an intent)."""
    command = commands.by_action(action)
    if command is not None and command.personal and not turn.private:
        return deeplinks.private_only(turn, command.name)
    return routes.ACTIONS[action](turn, args)


def on_text(turn: Turn, text: str) -> list[Reply]:
    if not text:
        return [turn.say("empty_message")]
    opened = _open_prompt(turn) if turn.private else None
    if opened is None:
        return message(turn, text)
    prompt = opened[1]
    flags = turn.matcher.red_flags(text, turn.today)
    replies = prompt.answer(turn, Answer(text))
    if replies is not None:
        return [Reply(red_flag_text(turn.kb, flags)), *replies] if flags else replies
    decision = turn.matcher.decide(text, turn.guide, turn.today)
    if flags:
        # The doctor's advice first (with any answer), then the step is asked again,
        # however often that happens: a red flag is never a reason to drop the prompt.
        advice = message(turn, text, decision) if decision.kind == "red_flag" else []
        if not advice:
            advice = [Reply(red_flag_text(turn.kb, flags))]
        return [*advice, *_again_after(turn, prompt)]
    if _is_a_failed_answer(turn, text, decision):
        return prompt.again(turn)  # say what the prompt needs, and ask again
    action = _intent_action(turn, decision) or ""
    return _beside_open_prompt(turn, action, lambda: message(turn, text, decision))


def _again_after(turn: Turn, prompt: Prompt) -> list[Reply]:
    """The open prompt asked again, led by "and back to my question"."""
    asked = prompt.ask(turn)
    if not asked:
        return []
    first = asked[0]
    lead = Reply(f"{turn.t('prompt_again')}\n\n{first.text}", first.buttons, first.image)
    return [lead, *asked[1:]]


def _is_a_failed_answer(turn: Turn, text: str, decision: Decision) -> bool:
    """A few words the bot can make nothing of ("blåbær") were meant as an answer.

    A longer message it cannot answer is still a question: it gets the honest fallback
    (and lands in the maintainers' gap list) before the prompt is asked again.
    """
    short = len(text.split()) <= SHORT_ANSWER_WORDS
    about_reminders = timewords.mentions_reminder(turn.kb.vocab, text)
    return decision.kind == "fallback" and short and not about_reminders


def message(turn: Turn, text: str, decision: Decision | None = None) -> list[Reply]:
    """A message that answers no prompt: an intent's action, or a question."""
    if decision is None:
        decision = turn.matcher.decide(text, turn.guide, turn.today)
    action = _intent_action(turn, decision)
    if action is not None:
        return act(turn, action, text)
    if decision.kind in ("fallback", "clarify"):
        if not turn.private and timewords.mentions_reminder(turn.kb.vocab, text):
            return deeplinks.private_only(turn, "paamindelse")
        about_reminders = reminders.from_words(turn, text)
        if about_reminders is not None:
            return about_reminders
    return questions.answer(turn, text, decision)


def _intent_action(turn: Turn, decision: Decision) -> str | None:
    if decision.kind != "intent":
        return None
    intent = next((i for i in turn.kb.intents if i.id == decision.intent_id), None)
    return None if intent is None or intent.action == "reply" else intent.action


# ------------------------------------------------------------------ the open prompt


def _open_prompt(turn: Turn) -> tuple[str, Prompt, bool] | None:
    """(prompt id, prompt, is it a state prompt) of what waits for an answer, if anything."""
    if turn.prompt in routes.STATES:
        return turn.prompt, routes.STATES[turn.prompt], True
    row = checkin.open_checkin(turn)
    if row is not None:
        return checkin.prompt_id(row), routes.CHECKIN, False
    return None


def _checkin_key(turn: Turn) -> tuple[int, str | None] | None:
    row = checkin.open_checkin(turn)
    return None if row is None else (row.id, row.step)


def _beside_open_prompt(turn: Turn, action: str, handle: Callable[[], list[Reply]]) -> list[Reply]:
    """Handle something that is no answer to the open prompt, then ask the prompt again once.

    When the handling opens a prompt of its own or changes the check-in, that is what
    is open next. Otherwise a state prompt is asked again, once: after a second message
    that is no answer it stays closed (an open check-in stays open either way).
    """
    opened = _open_prompt(turn) if turn.private else None
    if opened is None or action == CANCEL:
        return handle()
    prompt_id, prompt, is_state = opened
    again_already = turn.asked_again(prompt_id)
    before = _checkin_key(turn)
    turn.opened = False
    replies = handle()
    if turn.opened:
        return replies
    if is_state:
        turn.close_prompt()
    if _checkin_key(turn) != before or again_already:
        return replies
    again = _again_after(turn, prompt)
    turn.mark_asked_again(prompt_id)
    return [*replies, *again]
