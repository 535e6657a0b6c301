"""The command registry: every slash command declared once.

A `Command` names what the user types, the action intents refer to (intents/*.yaml
`action:`), its handler, its description in Telegram's menu and in /hjaelp
(`cmd_<name>` in knowledge/texts/commands.yaml), and whether it is personal (health
data or the user's own settings: only in a private chat; a group gets a pointer to
the private chat). Handlers that store health data ask for consent themselves. The
router, the menu, the help text and the validator's check of the intents read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.dialogs import checkin, data_rights, history, onboarding, reminders
from bot.dialogs.turn import Turn
from bot.replies import Reply

Handler = Callable[[Turn, str], list[Reply]]


@dataclass(frozen=True)
class Command:
    name: str  # what the user types after "/"
    action: str  # what intents/*.yaml call it
    handler: Handler
    menu: bool = True  # shown in Telegram's menu and in /hjaelp (text key cmd_<name>)
    personal: bool = False  # health data or the user's own settings: only in a private chat
    aliases: tuple[str, ...] = ()
    admin: bool = False

    @property
    def text_key(self) -> str:
        return f"cmd_{self.name}"


def help_text(turn: Turn, _args: str = "") -> list[Reply]:
    """/hjaelp: the commands of the menu, each with its menu text."""
    lines = [turn.t("help_line", command=c.name, description=turn.t(c.text_key)) for c in menu()]
    return [Reply("\n\n".join([turn.t("help_intro"), "\n".join(lines), turn.t("help_outro")]))]


def reload(turn: Turn, _args: str = "") -> list[Reply]:
    """/reload (admins): the new knowledge, or every problem that kept the old one."""
    _applied, report = turn.reload_knowledge()
    return [Reply(report)]


# In menu order. Adding a command: one line here, its cmd_<name> text, an intent file.
COMMANDS: tuple[Command, ...] = (
    Command("checkin", "start_checkin", checkin.begin, personal=True),
    Command("historik", "history", history.history, personal=True),
    Command("paamindelse", "set_reminder", reminders.set_reminder, personal=True),
    Command("guide", "change_guide", onboarding.change_guide, personal=True),
    Command("fase", "change_phase", onboarding.change_phase, personal=True),
    Command("hjaelp", "help", help_text, aliases=("help",)),
    Command("pause", "pause_reminders", reminders.pause, personal=True),
    Command("genoptag", "resume_reminders", reminders.resume, personal=True),
    Command("stop", "stop_reminders", reminders.stop, personal=True),
    Command("mine_data", "export_data", data_rights.export, personal=True),
    Command("slet", "delete_data", data_rights.ask_delete, personal=True),
    Command("privatliv", "privacy", data_rights.privacy),
    Command("samtykke", "withdraw_consent", data_rights.ask_withdraw, personal=True),
    Command("annuller", "cancel", checkin.cancel, personal=True),
    Command("start", "start", onboarding.start, personal=True),
    Command("reload", "reload", reload, menu=False, admin=True),
)

_BY_NAME = {n: c for c in COMMANDS for n in (c.name, *c.aliases)}
_BY_ACTION = {c.action: c for c in COMMANDS}
# What an intent may do: a command's action, or answer with its own reply text.
ACTIONS = frozenset(_BY_ACTION) - {"reload"} | {"reply"}


def find(name: str) -> Command | None:
    return _BY_NAME.get(name)


def by_action(action: str) -> Command | None:
    return _BY_ACTION.get(action)


def menu() -> tuple[Command, ...]:
    return tuple(c for c in COMMANDS if c.menu)
