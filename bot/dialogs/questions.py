"""Questions about the guides: the answer, the entry behind a suggestion button, feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, insert

from bot import protocol
from bot.answers import render, render_entry
from bot.dialogs.turn import Answer, Turn
from bot.replies import Button, Reply
from bot.storage import Question

if TYPE_CHECKING:
    from bot.matching import Decision

QUESTION_MAX_CHARS = 2000
_TABLE = cast(Table, Question.__table__)
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


def answer(turn: Turn, text: str, decision: Decision) -> list[Reply]:
    """The reply to a question; logged for the maintainers (without a user id unless consented)."""
    rendered = render(turn.kb, decision)
    buttons = rendered.buttons
    if decision.kind == "intent":
        return [Reply(rendered.text, buttons)]
    values = {
        "user_id": turn.user.id if turn.user.consent else None,
        "text": text[:QUESTION_MAX_CHARS],
        "kind": decision.kind,
        "guide": decision.guide,
        "entry_id": decision.entry_id,
        "score": float(decision.score),
    }
    if decision.entry_id is None and turn.user.consent:
        turn.s.add(Question(**values))
        return [Reply(rendered.text, buttons)]  # no id needed now: inserted at the commit
    # The id is needed now: one Core INSERT ... RETURNING (an ORM flush of the new row
    # cost several times as much CPU).
    question_id = turn.s.execute(_INSERT, values).scalar_one()
    if not turn.user.consent:
        turn.guests.questions.setdefault(turn.user.id, set()).add(question_id)
    if decision.entry_id is not None:
        helped = protocol.encode(protocol.FEEDBACK, 1, question_id)
        not_helped = protocol.encode(protocol.FEEDBACK, 0, question_id)
        buttons = (
            *buttons,
            (
                Button(turn.t("feedback_yes_button"), helped),
                Button(turn.t("feedback_no_button"), not_helped),
            ),
        )
    return [Reply(rendered.text, buttons)]


def pick(turn: Turn, answer: Answer) -> list[Reply] | None:
    """A pressed suggestion: the entry it names ("which guide?" answered is remembered)."""
    entry_id = answer.value
    if entry_id not in turn.kb.entries:
        return None
    if turn.guide is None:
        turn.remember_guide(turn.kb.entry_guide[entry_id])
    rendered = render_entry(turn.kb, entry_id)
    return [Reply(rendered.text, rendered.buttons)]


def feedback(turn: Turn, answer: Answer) -> list[Reply] | None:
    """👍/👎 under an answer: only for the user's own question."""
    verdict, raw_id = (*answer.fields, "", "")[:2]
    qid = protocol.parse_id(raw_id)
    if verdict not in {"0", "1"} or qid is None:
        return None
    question = turn.s.get(Question, qid)
    if question is None:
        return None
    own = question.user_id == turn.user.id or (
        question.user_id is None and question.id in turn.guests.questions.get(turn.user.id, set())
    )
    if not own:
        return None
    question.helpful = verdict == "1"
    question.feedback_at = turn.now
    return [turn.say("feedback_thanks" if question.helpful else "feedback_sorry")]
