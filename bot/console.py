"""The console adapter: the same dialogue engine in a terminal, on the local database.

Buttons are shown as numbered choices, `[1] Ja`; typing the number presses the button.
One rule for digits: where the buttons are numbers themselves (the pain scale 0-10),
they are shown as `[4]` and typing 4 presses the button labelled 4, so what you see is
what you type. A button's own label, typed, presses it too.
Pictures and files are written to data/console/ and their paths printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.engine import Engine, build_engine
from bot.knowledge import KnowledgeError
from bot.replies import Button, Incoming, Reply
from bot.settings import SettingsError, load_settings
from bot.startup import StartupError, configure_logging, fail, open_database

QUIT = {"/quit", "/exit", "/q"}


class ConsoleChat:
    """One console user talking to the engine; kept apart from I/O for testing."""

    def __init__(
        self, engine: Engine, user_id: int, out_dir: Path, write: Callable[[str], None]
    ) -> None:
        self.engine = engine
        self.user_id = user_id
        self.out_dir = out_dir
        self.write = write
        self.buttons: list[Button] = []

    def send(self, line: str) -> None:
        button = self._button_for(line.strip())
        if button is not None:
            incoming = Incoming(self.user_id, self.user_id, "callback", callback=button.data)
        else:
            incoming = Incoming.parse_text(self.user_id, self.user_id, line)
        self.show(self.engine.handle(incoming))

    def _button_for(self, typed: str) -> Button | None:
        """The button whose label is typed, else (unless the labels are numbers) its number."""
        for button in self.buttons:
            if typed.lower() == button.label.lower():
                return button
        numbered = not _labels_are_numbers(self.buttons)
        if numbered and typed.isdigit() and 1 <= int(typed) <= len(self.buttons):
            return self.buttons[int(typed) - 1]
        return None

    def show(self, replies: list[Reply]) -> None:
        self.buttons = []
        for reply in replies:
            self.write(reply.text)
            if reply.image is not None:
                self.write(
                    self.engine.kb.text(
                        "console_saved", path=self._save("historik.png", reply.image)
                    )
                )
            if reply.document is not None:
                path = self._save(reply.document.filename, reply.document.content)
                self.write(self.engine.kb.text("console_saved", path=path))
            numbers = _labels_are_numbers([b for row in reply.buttons for b in row])
            for row in reply.buttons:
                labels = []
                for button in row:
                    if button.url is not None:  # a link, not a press: shown as it is
                        labels.append(f"{button.label}: {button.url}")
                        continue
                    self.buttons.append(button)
                    shown = (
                        f"[{button.label}]" if numbers else f"[{len(self.buttons)}] {button.label}"
                    )
                    labels.append(shown)
                self.write("   " + "   ".join(labels))
            self.write("")

    def _save(self, name: str, content: bytes) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / Path(name).name
        path.write_bytes(content)
        return path


def _labels_are_numbers(buttons: list[Button]) -> bool:
    return bool(buttons) and all(b.label.isdigit() for b in buttons)


def _reload_on_sighup(engine: Engine, write: Callable[[str], None]) -> None:
    """`kill -HUP <pid>` reloads the knowledge here too, and the chat goes on."""
    if not hasattr(signal, "SIGHUP"):
        return

    def reload() -> None:
        _ok, report = engine.reload()
        write(report)

    def on_hup(_signum: int, _frame: object) -> None:
        threading.Thread(target=reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)


def chat_main(
    argv: list[str],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    note: str | None = None,
) -> int:
    """`python -m bot chat`: talk to the bot in this terminal."""
    parser = argparse.ArgumentParser(prog="python -m bot chat", description=chat_main.__doc__)
    parser.add_argument("--user", type=int, default=1, help="user id to chat as (default 1)")
    args = parser.parse_args(argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc))
    configure_logging(settings.log_level, console_chat=True)
    from bot.storage import User

    try:
        db = open_database(settings)
        engine = build_engine(settings, db)
    except (StartupError, KnowledgeError) as exc:
        return fail(str(exc).replace("\n", "; "))
    engine.forget_guests()  # as the Telegram bot does at start

    def write(text: str) -> None:
        print(text, file=stdout, flush=True)

    chat = ConsoleChat(engine, args.user, settings.cache_dir.parent / "console", write)
    write(engine.kb.text("console_intro"))
    if note:
        print(note, file=sys.stderr, flush=True)
    _reload_on_sighup(engine, write)
    with db.session() as session:
        known = session.get(User, args.user) is not None
    if not known:
        chat.send("/start")  # a returning user continues where they were
    interactive = stdin.isatty()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = stdin.readline()
        if not line or line.strip() in QUIT:
            break
        if not line.strip():
            continue
        chat.send(line.rstrip("\n"))
    return 0
