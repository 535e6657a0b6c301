"""The dialogue engine: the whole bot without Telegram.

`Engine.handle(incoming) -> replies` is what the Telegram adapter, the console
chat and the tests all call. Each call runs in one database transaction that is
committed before the replies are returned, so every answer a user gives is
stored before they see the next question and survives a crash.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import checkin as ci
from bot import reminders
from bot.answers import render, render_entry
from bot.knowledge import Intent, Knowledge, KnowledgeError, load_knowledge
from bot.matching import Matcher
from bot.records import DayRecord, Morning, ZoneId
from bot.replies import Button, Document, Incoming, Reply
from bot.settings import Settings
from bot.storage import (
    Checkin,
    Database,
    Question,
    User,
    delete_user_data,
    export_user_data,
    utcnow,
)

log = logging.getLogger(__name__)

# Slash commands (the names users type) -> the action they trigger. Danish
# descriptions for Telegram's command menu live in knowledge/texts/commands.yaml.
COMMANDS: dict[str, str] = {
    "start": "start",
    "hjaelp": "help",
    "help": "help",
    "checkin": "start_checkin",
    "historik": "history",
    "paamindelse": "set_reminder",
    "pause": "pause_reminders",
    "genoptag": "resume_reminders",
    "stop": "stop_reminders",
    "guide": "change_guide",
    "mine_data": "export_data",
    "slet": "delete_data",
    "privatliv": "privacy",
    "annuller": "cancel",
}
MENU_COMMANDS = (
    "checkin",
    "historik",
    "paamindelse",
    "guide",
    "hjaelp",
    "pause",
    "genoptag",
    "stop",
    "mine_data",
    "slet",
    "privatliv",
    "annuller",
    "start",
)
ADMIN_COMMANDS = {"reload"}

ONBOARDING_CONSENT = "onboarding_consent"
ONBOARDING_GUIDE = "onboarding_guide"
ONBOARDING_PHASE = "onboarding_phase"
CHOOSING_GUIDE = "choosing_guide"
CHOOSING_PHASE = "choosing_phase"
CONFIRM_DELETE = "confirm_delete"
CONFIRM_REPLACE = "confirm_replace"

HISTORY_DAYS = 30


@dataclass(frozen=True)
class _Loaded:
    kb: Knowledge
    matcher: Matcher


def _clean(text: str) -> str:
    """Drop control and format characters that phones and bad clients slip in."""
    kept = (ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "".join(kept).strip()


def _words(kb: Knowledge, key: str) -> set[str]:
    return {w.strip().lower() for w in kb.text(key).split(",") if w.strip()}


class Engine:
    """One dialogue engine per process; thread-safe because each call has its own session."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        kb: Knowledge | None = None,
        matcher: Matcher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        if kb is None:
            kb = load_knowledge(settings.knowledge_dir, settings.intents_dir)
        if matcher is None:
            matcher = Matcher.build(kb, settings.cache_dir)
        self._loaded = _Loaded(kb, matcher)
        self._lock = threading.Lock()
        # Without consent nothing personal is stored: the chosen guide and the
        # ids of anonymously logged questions live only in memory.
        self._guest_guides: dict[int, str] = {}
        self._guest_questions: dict[int, set[int]] = {}

    # ------------------------------------------------------------------ public

    @property
    def kb(self) -> Knowledge:
        return self._loaded.kb

    @property
    def matcher(self) -> Matcher:
        return self._loaded.matcher

    def reload(self) -> tuple[bool, str]:
        """Load the YAML again; keep the old knowledge when the new one has any problem."""
        try:
            kb = load_knowledge(self.settings.knowledge_dir, self.settings.intents_dir)
        except KnowledgeError as exc:
            problems = "\n".join(str(p) for p in exc.problems[:20])
            log.warning("reload refused: %d problem(s)", len(exc.problems))
            return False, self.kb.text("reload_failed", problems=problems)
        matcher = Matcher.build(kb, self.settings.cache_dir)
        with self._lock:
            self._loaded = _Loaded(kb, matcher)
        log.info("knowledge reloaded: %d entries", len(kb.entries))
        return True, kb.text("reload_ok", entries=len(kb.entries), intents=len(kb.intents))

    def handle(self, msg: Incoming) -> list[Reply]:
        """Handle one user action; state is committed before the replies are returned."""
        loaded = self._loaded
        try:
            with self.db.session() as s:
                user = self._user(s, msg)
                update_id = msg.extra.get("update_id")
                last = user.last_update_id
                if update_id is not None and last is not None and int(update_id) <= last:
                    log.info("skipping redelivered update %s", update_id)
                    return []
                if update_id is not None:
                    user.last_update_id = int(update_id)
                replies = _Turn(self, loaded, s, user, msg).run()
                s.commit()
                return replies
        except Exception:
            log.exception("failed to handle an update from user %s", msg.user_id)
            return [Reply(loaded.kb.text("error"))]

    def menu_commands(self) -> list[tuple[str, str]]:
        """(command, Danish description) pairs for Telegram's command menu."""
        return [(name, self.kb.text(f"cmd_{name}")) for name in MENU_COMMANDS]

    def mark_blocked(self, user_id: int) -> None:
        """Telegram said 403: stop reminding this user until they write again."""
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is not None and user.active:
                user.active = False
                s.commit()
                log.info("user %s blocked the bot; marked inactive", user_id)

    # ------------------------------------------------------------------ helpers

    def _user(self, s: Session, msg: Incoming) -> User:
        # Only a private chat (chat id == user id on Telegram) is where reminders may go;
        # a mention in a group must not send the user's health prompts to that group.
        private = msg.chat_id == msg.user_id
        user = s.get(User, msg.user_id)
        if user is None:
            user = User(
                id=msg.user_id,
                chat_id=msg.chat_id if private else None,
                timezone=self.settings.timezone,
            )
            s.add(user)
            s.flush()
        elif not user.active:
            user.active = True
        if private and user.chat_id != msg.chat_id:
            user.chat_id = msg.chat_id
        return user

    def guide_of(self, user: User) -> str | None:
        if user.consent and user.guide:
            return user.guide
        return self._guest_guides.get(user.id) or user.guide


class _Turn:
    """One incoming message: the state it reads and the replies it produces."""

    def __init__(
        self, engine: Engine, loaded: _Loaded, s: Session, user: User, msg: Incoming
    ) -> None:
        self.e = engine
        self.kb = loaded.kb
        self.matcher = loaded.matcher
        self.s = s
        self.user = user
        self.msg = msg
        self.now = engine.clock()
        self.tz = ZoneInfo(user.timezone or engine.settings.timezone)
        self.today = self.now.astimezone(self.tz).date()
        self.pre: list[Reply] = []

    def t(self, key: str, **values: object) -> str:
        return self.kb.text(key, **values)

    def run(self) -> list[Reply]:
        msg = self.msg
        self._expire_stale_checkin()
        if msg.kind == "unsupported":
            key = f"unsupported_{msg.media}"
            return [
                *self.pre,
                Reply(self.t(key) if key in self.kb.texts else self.t("unsupported_message")),
            ]
        if msg.kind == "callback":
            return [*self.pre, *self.on_callback(msg.callback or "")]
        if msg.kind == "command":
            return [*self.pre, *self.on_command(msg.command or "", msg.args)]
        return [*self.pre, *self.on_text(_clean(msg.text))]

    # ------------------------------------------------------------------ routing

    def on_command(self, name: str, args: str) -> list[Reply]:
        if name in ADMIN_COMMANDS:
            if self.user.id not in self.e.settings.admin_ids:
                return [Reply(self.t("not_admin"))]
            _ok, text = self.e.reload()
            return [Reply(text)]
        action = COMMANDS.get(name)
        if action is None:
            return [Reply(self.t("unknown_command"))]
        if action != "cancel" and self.user.dialog_state in {CONFIRM_DELETE, CONFIRM_REPLACE}:
            self.user.dialog_state = None
        return self.do(action, args)

    def on_text(self, text: str) -> list[Reply]:
        if not text:
            return [Reply(self.t("empty_message"))]
        state = self.user.dialog_state
        if state in {
            ONBOARDING_CONSENT,
            ONBOARDING_GUIDE,
            ONBOARDING_PHASE,
            CHOOSING_GUIDE,
            CHOOSING_PHASE,
        }:
            replies = self.onboarding_typed(state, text)
            if replies is not None:
                return replies
        if state in {CONFIRM_DELETE, CONFIRM_REPLACE}:
            low = text.lower().strip(" !.")
            if low in _words(self.kb, "words_yes") or low in _words(self.kb, "words_no"):
                yes = low in _words(self.kb, "words_yes")
                return self.on_callback(
                    ("del:" if state == CONFIRM_DELETE else "cr:") + ("1" if yes else "0")
                )
            self.user.dialog_state = None
        open_ci = self._open_checkin()
        if open_ci is not None:
            return self.checkin_text(open_ci, text)
        return self.ask(text)

    def on_callback(self, data: str) -> list[Reply]:
        prefix, _, rest = data.partition(":")
        if prefix == "ci":
            open_ci = self._open_checkin()
            if open_ci is None:
                return [Reply(self.t("button_expired"))]
            return self.checkin_step(open_ci, callback=data)
        if prefix == "ob":
            return self.onboarding_button(rest)
        if prefix == "pick":
            if rest not in self.kb.entries:
                return [Reply(self.t("button_expired"))]
            if self.e.guide_of(self.user) is None:
                self._remember_guide(self.kb.entry_guide[rest])  # "which guide?" answered
            rendered = render_entry(self.kb, rest)
            return [Reply(rendered.text, rendered.buttons)]
        if prefix == "fb":
            return self.feedback(rest)
        if prefix == "cr":
            self.user.dialog_state = None
            if rest == "1":
                return self.begin_checkin(replace=True)
            return [Reply(self.t("flow_checkin_kept"))]
        if prefix == "del":
            if self.user.dialog_state != CONFIRM_DELETE:
                return [Reply(self.t("button_expired"))]
            self.user.dialog_state = None
            if rest == "1":
                return self.delete_everything()
            return [Reply(self.t("delete_kept"))]
        if prefix == "rem":
            if rest == "ci":
                return self.do("start_checkin", "")
            if rest == "snooze":
                return self.snooze()
        return [Reply(self.t("button_expired"))]

    def do(self, action: str, args: str) -> list[Reply]:
        handlers: dict[str, Callable[[str], list[Reply]]] = {
            "start": lambda _a: self.start(),
            "help": lambda _a: [Reply(self.t("help"))],
            "privacy": lambda _a: [Reply(self.t("privacy"))],
            "start_checkin": lambda _a: self.begin_checkin(),
            "cancel": lambda _a: self.cancel(),
            "change_guide": lambda _a: self.ask_guide(CHOOSING_GUIDE),
            "history": lambda _a: self.history(),
            "set_reminder": self.set_reminder,
            "pause_reminders": self.pause_reminders,
            "resume_reminders": lambda _a: self.resume_reminders(),
            "stop_reminders": lambda _a: self.stop_reminders(),
            "export_data": lambda _a: self.export(),
            "delete_data": lambda _a: self.confirm_delete(),
        }
        return handlers[action](args)

    # ------------------------------------------------------------------ answers

    def _intent(self, intent_id: str | None) -> Intent:
        return next(i for i in self.kb.intents if i.id == intent_id)

    def ask(self, text: str) -> list[Reply]:
        decision = self.matcher.decide(text, self.e.guide_of(self.user))
        if decision.kind == "intent":
            intent = self._intent(decision.intent_id)
            if intent.action != "reply":
                return self.do(intent.action, text)
        rendered = render(self.kb, decision)
        buttons = rendered.buttons
        if decision.kind != "intent":
            question = Question(
                user_id=self.user.id if self.user.consent else None,
                text=text[:2000],
                kind=decision.kind,
                guide=decision.guide,
                entry_id=decision.entry_id,
                score=float(decision.score),
            )
            self.s.add(question)
            self.s.flush()
            if not self.user.consent:
                self.e._guest_questions.setdefault(self.user.id, set()).add(question.id)
            if decision.entry_id is not None:
                buttons = (
                    *buttons,
                    (
                        Button(self.t("feedback_yes_button"), f"fb:1:{question.id}"),
                        Button(self.t("feedback_no_button"), f"fb:0:{question.id}"),
                    ),
                )
        return [Reply(rendered.text, buttons)]

    def feedback(self, rest: str) -> list[Reply]:
        verdict, _, qid_text = rest.partition(":")
        if verdict not in {"0", "1"} or not qid_text.isdigit():
            return [Reply(self.t("button_expired"))]
        question = self.s.get(Question, int(qid_text))
        own = question is not None and (
            question.user_id == self.user.id
            or (
                question.user_id is None
                and question.id in self.e._guest_questions.get(self.user.id, set())
            )
        )
        if question is None or not own:
            return [Reply(self.t("button_expired"))]
        question.helpful = verdict == "1"
        question.feedback_at = self.now
        return [Reply(self.t("feedback_thanks" if question.helpful else "feedback_sorry"))]

    # ------------------------------------------------------------------ onboarding

    def start(self) -> list[Reply]:
        self.user.dialog_state = ONBOARDING_CONSENT
        name = f" {self.msg.first_name}" if self.msg.first_name else ""
        return [
            Reply(self.t("welcome", name=name)),
            self._consent_question(),
        ]

    def _consent_question(self) -> Reply:
        return Reply(
            self.t("consent_question"),
            (
                (
                    Button(self.t("consent_yes_button"), "ob:c:1"),
                    Button(self.t("consent_no_button"), "ob:c:0"),
                ),
            ),
        )

    def ask_guide(self, state: str) -> list[Reply]:
        self.user.dialog_state = state
        rows = tuple((Button(g.short, f"ob:g:{g.id}"),) for g in self.kb.guides.values())
        return [Reply(self.t("guide_question"), rows)]

    def _ask_phase(self, state: str = ONBOARDING_PHASE) -> list[Reply]:
        self.user.dialog_state = state
        row1 = tuple(Button(self.t("phase_button", phase=n), f"ob:p:{n}") for n in (1, 2))
        row2 = tuple(Button(self.t("phase_button", phase=n), f"ob:p:{n}") for n in (3, 4))
        return [
            Reply(
                self.t("phase_question"),
                (row1, row2, (Button(self.t("phase_unknown_button"), "ob:p:0"),)),
            )
        ]

    def set_consent(self, yes: bool) -> list[Reply]:
        if yes:
            self.user.consent = True
            self.user.consent_at = self.now
            guest = self.e._guest_guides.pop(self.user.id, None)
            if guest and not self.user.guide:
                self.user.guide = guest
            first = Reply(self.t("consent_given"))
        else:
            if self.user.guide:
                self.e._guest_guides[self.user.id] = self.user.guide
            self.user.consent = False
            self.user.consent_at = None
            self.user.guide = None
            self.user.phase = None
            first = Reply(self.t("consent_declined"))
        return [first, *self.ask_guide(ONBOARDING_GUIDE)]

    def _remember_guide(self, guide_id: str) -> None:
        """Stored with consent; otherwise kept in memory only."""
        if self.user.consent:
            self.user.guide = guide_id
        else:
            self.e._guest_guides[self.user.id] = guide_id

    def set_guide(self, guide_id: str) -> list[Reply]:
        guide = self.kb.guides[guide_id]
        state = self.user.dialog_state
        self._remember_guide(guide_id)
        key = "guide_set" if self.user.consent else "guide_changed_no_consent"
        confirm = Reply(self.t(key, guide=guide.title.lower()))
        if state == ONBOARDING_GUIDE and self.user.consent:
            return [confirm, *self._ask_phase()]
        if state == CHOOSING_GUIDE and self.user.consent:
            return [confirm, *self._ask_phase(CHOOSING_PHASE)]  # /guide also updates the phase
        self.user.dialog_state = None
        if state == ONBOARDING_GUIDE:
            return [confirm, Reply(self.t("onboarding_done"))]
        return [confirm]

    def set_phase(self, phase: int) -> list[Reply]:
        onboarding = self.user.dialog_state != CHOOSING_PHASE
        self.user.dialog_state = None
        if phase:
            self.user.phase = phase
            first = Reply(self.t("phase_set", phase=phase))
        else:
            self.user.phase = None
            first = Reply(self.t("phase_skipped"))
        return [first, Reply(self.t("onboarding_done"))] if onboarding else [first]

    def onboarding_button(self, rest: str) -> list[Reply]:
        kind, _, value = rest.partition(":")
        if kind == "c" and value in {"0", "1"}:
            return self.set_consent(value == "1")
        if kind == "g" and value in self.kb.guides:
            return self.set_guide(value)
        if kind == "p" and value in {"0", "1", "2", "3", "4"}:
            if not self.user.consent:
                return [Reply(self.t("button_expired"))]
            return self.set_phase(int(value))
        return [Reply(self.t("button_expired"))]

    def onboarding_typed(self, state: str, text: str) -> list[Reply] | None:
        """Typed answers to an onboarding question; None lets a real question through."""
        low = text.lower().strip(" !.?")
        short = len(low.split()) <= 3
        if state == ONBOARDING_CONSENT:
            if low in _words(self.kb, "words_yes"):
                return self.set_consent(True)
            if low in _words(self.kb, "words_no"):
                return self.set_consent(False)
            return [Reply(self.t("consent_hint")), self._consent_question()] if short else None
        if state in {ONBOARDING_GUIDE, CHOOSING_GUIDE}:
            guide = self._guide_from_words(low)
            if guide is not None:
                return self.set_guide(guide)
            return [Reply(self.t("guide_hint")), *self.ask_guide(state)] if short else None
        if state in {ONBOARDING_PHASE, CHOOSING_PHASE}:
            digits = [c for c in low if c.isdigit()]
            if len(digits) == 1 and digits[0] in "1234":
                return self.set_phase(int(digits[0]))
            if low in _words(self.kb, "words_dont_know"):
                return self.set_phase(0)
            return [Reply(self.t("phase_hint")), *self._ask_phase(state)] if short else None
        return None

    def _guide_from_words(self, low: str) -> str | None:
        tokens = set(low.replace(",", " ").split())
        hits = set()
        for guide in self.kb.guides.values():
            named = [*guide.context_words, *guide.weak_context_words]
            words = {guide.id, *(w.lower() for w in named), guide.title.lower()}
            if any((w in tokens) if " " not in w else (w in low) for w in words):
                hits.add(guide.id)
        return hits.pop() if len(hits) == 1 else None

    # ------------------------------------------------------------------ check-in

    def _open_checkin(self) -> Checkin | None:
        return self.s.scalars(
            select(Checkin).where(Checkin.user_id == self.user.id, Checkin.status == "open")
        ).first()

    def _expire_stale_checkin(self) -> None:
        open_ci = self._open_checkin()
        timeout = timedelta(minutes=self.e.settings.checkin_timeout_minutes)
        if open_ci is not None and open_ci.updated_at < self.now - timeout:
            open_ci.status = "expired"
            self.s.flush()
            self.pre.append(Reply(self.t("flow_checkin_expired")))

    def _done_today(self) -> Checkin | None:
        return self.s.scalars(
            select(Checkin).where(
                Checkin.user_id == self.user.id,
                Checkin.status == "done",
                Checkin.local_date == self.today,
            )
        ).first()

    def begin_checkin(self, replace: bool = False) -> list[Reply]:
        if not self.user.consent:
            return [Reply(self.t("consent_required")), self._consent_question_only()]
        open_ci = self._open_checkin()
        if open_ci is not None:
            draft = _draft_of(open_ci)
            return [Reply(self.t("flow_checkin_resume")), ci.prompt(self.kb, draft)]
        done = self._done_today()
        if done is not None and not replace:
            zone = self.kb.traffic_light.zone(done.zone or "green")
            self.user.dialog_state = CONFIRM_REPLACE
            return [
                Reply(
                    self.t("flow_already_today", symbol=zone.symbol, pain=done.pain),
                    (
                        (
                            Button(self.t("flow_replace_yes_button"), "cr:1"),
                            Button(self.t("flow_replace_no_button"), "cr:0"),
                        ),
                    ),
                )
            ]
        draft = ci.new_draft()
        row = Checkin(
            user_id=self.user.id,
            local_date=self.today,
            status="open",
            step=draft.step.value,
            started_at=self.now,
            updated_at=self.now,
        )
        self.s.add(row)
        self.s.flush()
        return [ci.prompt(self.kb, draft)]

    def _consent_question_only(self) -> Reply:
        self.user.dialog_state = ONBOARDING_CONSENT
        return self._consent_question()

    def _is_cancel(self, text: str, exact: bool) -> bool:
        """Does typed text mean "cancel"? At the free-text note step only an exact phrase counts."""
        if exact:
            folded = text.lower().strip(" !.")
            return any(
                folded == example.lower()
                for intent in self.kb.intents
                if intent.action == "cancel"
                for example in intent.examples
            )
        decision = self.matcher.decide(text, self.e.guide_of(self.user))
        return decision.kind == "intent" and self._intent(decision.intent_id).action == "cancel"

    def checkin_text(self, row: Checkin, text: str) -> list[Reply]:
        """A typed answer in a check-in: the step's own reading first, then "cancel"."""
        note_step = row.step == ci.Step.NOTE.value
        if note_step and self._is_cancel(text, exact=True):
            return self.cancel()
        result = ci.answer(self.kb, _draft_of(row), text=text)
        if not result.understood and not note_step and self._is_cancel(text, exact=False):
            return self.cancel()
        return self._apply_step(row, result)

    def checkin_step(
        self, row: Checkin, text: str | None = None, callback: str | None = None
    ) -> list[Reply]:
        return self._apply_step(
            row, ci.answer(self.kb, _draft_of(row), text=text, callback=callback)
        )

    def _apply_step(self, row: Checkin, result: ci.StepResult) -> list[Reply]:
        draft = _draft_of(row)
        if not result.understood:
            return [result.reply] if result.reply else [ci.prompt(self.kb, draft)]
        new = result.draft
        row.step = new.step.value
        row.pain = new.pain
        row.morning = new.morning
        row.activity = new.activity
        row.note = new.note
        row.updated_at = self.now
        if new.step != ci.Step.DONE:
            self.s.flush()
            return [result.reply] if result.reply else [ci.prompt(self.kb, new)]
        return self._complete(row, new)

    def _complete(self, row: Checkin, draft: ci.Draft) -> list[Reply]:
        zone = ci.zone_of(self.kb, draft)
        for old in self.s.scalars(
            select(Checkin).where(
                Checkin.user_id == self.user.id,
                Checkin.status == "done",
                Checkin.local_date == row.local_date,
                Checkin.id != row.id,
            )
        ):
            old.status = "replaced"
        self.s.flush()
        row.status = "done"
        row.step = None
        row.zone = zone.id
        row.completed_at = self.now
        self.s.flush()
        reminders.checked_in(self.s, self.user, self.now)
        history = self._history(self.kb.traffic_light.trend.no_improvement_weeks * 7 + 7)
        guide = self.e.guide_of(self.user)
        return [ci.summary(self.kb, draft, guide, self.user.phase, history, self.today)]

    def _history(self, days: int) -> list[DayRecord]:
        since = self.today - timedelta(days=days - 1)
        rows = self.s.scalars(
            select(Checkin)
            .where(
                Checkin.user_id == self.user.id,
                Checkin.status == "done",
                Checkin.local_date >= since,
            )
            .order_by(Checkin.local_date)
        )
        return [
            DayRecord(
                day=r.local_date,
                pain=r.pain or 0,
                zone=cast(ZoneId, r.zone or "green"),
                morning=cast(Morning | None, r.morning),
                activity=r.activity,
            )
            for r in rows
        ]

    def cancel(self) -> list[Reply]:
        open_ci = self._open_checkin()
        if open_ci is not None:
            self.s.delete(open_ci)
            self.s.flush()
            return [Reply(self.t("flow_checkin_cancelled"))]
        if self.user.dialog_state is not None:
            self.user.dialog_state = None
            return [Reply(self.t("cancelled"))]
        return [Reply(self.t("nothing_to_cancel"))]

    # ------------------------------------------------------------------ history and data

    def history(self) -> list[Reply]:
        if not self.user.consent:
            return [Reply(self.t("consent_required")), self._consent_question_only()]
        from bot.charts import history_png, history_summary

        days = self._history(HISTORY_DAYS)
        summary = history_summary(self.kb, days, self.today, span_days=HISTORY_DAYS)
        png = history_png(self.kb, days, self.today, span_days=HISTORY_DAYS)
        return [Reply(summary, image=png)]

    def export(self) -> list[Reply]:
        data = export_user_data(self.s, self.user.id)
        payload = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        stamp = self.today.isoformat()
        return [
            Reply(
                self.t("export_intro"),
                document=Document(f"mine_data_{stamp}.json", payload, "application/json"),
            ),
            Reply(
                self.t("export_csv"),
                document=Document(f"mine_data_{stamp}.csv", _to_csv(data), "text/csv"),
            ),
        ]

    def confirm_delete(self) -> list[Reply]:
        self.user.dialog_state = CONFIRM_DELETE
        return [
            Reply(
                self.t("delete_question"),
                (
                    (
                        Button(self.t("delete_yes_button"), "del:1"),
                        Button(self.t("delete_no_button"), "del:0"),
                    ),
                ),
            )
        ]

    def delete_everything(self) -> list[Reply]:
        user_id = self.msg.user_id  # the User row is gone after this; don't touch it again
        counts = delete_user_data(self.s, user_id)
        self.e._guest_guides.pop(user_id, None)
        self.e._guest_questions.pop(user_id, None)
        lines = [
            self.t("delete_count_line", what=self.t(f"table_{table}"), count=n)
            for table, n in counts.items()
            if n
        ]
        return [Reply(self.t("delete_done", details="\n".join(lines) or self.t("delete_nothing")))]

    # ------------------------------------------------------------------ reminders

    def _needs_consent(self) -> list[Reply] | None:
        if self.user.consent:
            return None
        return [Reply(self.t("consent_required")), self._consent_question_only()]

    def set_reminder(self, args: str) -> list[Reply]:
        if (refusal := self._needs_consent()) is not None:
            return refusal
        from bot.schedule import find_reminder_time

        when = find_reminder_time(args) if args.strip() else None
        if when is None:
            return [Reply(self.t("reminder_how"))]
        reminder = reminders.set_time(self.s, self.user, when, self.now)
        local = reminder.next_due_at.astimezone(self.tz)
        return [
            Reply(
                self.t(
                    "reminder_set",
                    time=when.strftime("%H:%M"),
                    next=_fmt_day(self.kb, local, self.today),
                )
            )
        ]

    def pause_reminders(self, args: str) -> list[Reply]:
        if (refusal := self._needs_consent()) is not None:
            return refusal
        from bot.schedule import find_pause

        days = find_pause(args) if args.strip() else None
        reminder = reminders.pause(self.s, self.user, days, self.now)
        if reminder is None:
            return [Reply(self.t("reminder_none"))]
        if days is None:
            return [Reply(self.t("reminder_paused"))]
        until = (self.today + timedelta(days=days)).strftime("%d.%m.")
        return [Reply(self.t("reminder_paused_days", days=days, until=until))]

    def resume_reminders(self) -> list[Reply]:
        if (refusal := self._needs_consent()) is not None:
            return refusal
        reminder = reminders.resume(self.s, self.user, self.now)
        if reminder is None:
            return [Reply(self.t("reminder_none"))]
        local = reminder.next_due_at.astimezone(self.tz)
        return [
            Reply(
                self.t(
                    "reminder_resumed",
                    time=reminder.local_time.strftime("%H:%M"),
                    next=_fmt_day(self.kb, local, self.today),
                )
            )
        ]

    def stop_reminders(self) -> list[Reply]:
        stopped = reminders.stop(self.s, self.user)
        return [Reply(self.t("reminder_stopped" if stopped else "reminder_none"))]

    def snooze(self) -> list[Reply]:
        reminder = reminders.snooze(self.s, self.user, self.now)
        if reminder is None:
            return [Reply(self.t("button_expired"))]
        local = reminder.next_due_at.astimezone(self.tz)
        return [Reply(self.t("reminder_snoozed", time=local.strftime("%H:%M")))]


def _fmt_day(kb: Knowledge, local: datetime, today: date) -> str:
    if local.date() == today:
        return kb.text("day_today", time=local.strftime("%H:%M"))
    if local.date() == today + timedelta(days=1):
        return kb.text("day_tomorrow", time=local.strftime("%H:%M"))
    return kb.text("day_other", date=local.strftime("%d.%m."), time=local.strftime("%H:%M"))


def _draft_of(row: Checkin) -> ci.Draft:
    return ci.Draft(
        step=ci.Step(row.step or ci.Step.PAIN.value),
        pain=row.pain,
        morning=row.morning,  # type: ignore[arg-type]
        activity=row.activity,
        note=row.note,
    )


def _to_csv(data: Mapping[str, Sequence[Mapping[str, object]]]) -> bytes:
    """Everything in one long CSV: one line per (table, row, field, value)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["table", "row", "field", "value"])
    for table, rows in data.items():
        for index, row in enumerate(rows):
            for key, value in row.items():
                writer.writerow([table, index, key, "" if value is None else value])
    return buf.getvalue().encode("utf-8")


def build_engine(settings: Settings, db: Database | None = None) -> Engine:
    """The engine with its database, knowledge and matcher: what every adapter starts with."""
    if db is None:
        db = Database(settings.database_url)
    return Engine(settings, db)


__all__ = ["COMMANDS", "MENU_COMMANDS", "Engine", "build_engine"]
