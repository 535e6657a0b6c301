"""Knowledge reloads while the real bot runs: on SIGHUP and on an admin's /reload.

Broken YAML is refused and the bot keeps what it had; the admin is told what is wrong.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

from .botproc import Chat, contains, wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.e2e

ADMIN = 4242
USER = 4343


def _set_help(kdir: Path, text: str) -> None:
    """Edit the first paragraph of /hjaelp (the rest is built from the command registry)."""
    path = kdir / "texts" / "commands.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("help_intro:"))
    end = start + 1
    while end < len(lines) and (lines[end].startswith("  ") or not lines[end].strip()):
        end += 1
    lines[start:end] = [f'help_intro: "{text}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_sighup_and_reload_swap_knowledge_and_refuse_broken_yaml(
    fake_telegram: FakeTelegram, bot_process: BotFactory, tmp_path: Path
) -> None:
    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "knowledge", kdir)
    shutil.copytree(PROJECT_ROOT / "intents", idir)
    bot = bot_process(
        {"KNOWLEDGE_DIR": str(kdir), "INTENTS_DIR": str(idir), "ADMIN_IDS": str(ADMIN)}
    ).start_and_wait()
    user, admin = Chat(fake_telegram, USER), Chat(fake_telegram, ADMIN)
    user.command("hjaelp", contains("/checkin"))

    # SIGHUP: the edited text is live without a restart.
    _set_help(kdir, "Hjælpeteksten er ny.")
    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP reload applied" in bot.log(), timeout=60)
    user.command("hjaelp", contains("Hjælpeteksten er ny."))

    # A broken file: /reload from the admin is refused with path:line, old text stays.
    (kdir / "synonyms.yaml").write_text("synonyms: [ikke lukket\n", encoding="utf-8")
    reply = admin.command("reload", contains("IKKE"))
    assert "synonyms.yaml:" in reply.text
    user.command("hjaelp", contains("Hjælpeteksten er ny."))

    # Not an admin: refused.
    user.command("reload", contains("kun for administratorer"))

    # Fixed again: /reload applies the next edit.
    shutil.copy(PROJECT_ROOT / "knowledge" / "synonyms.yaml", kdir / "synonyms.yaml")
    _set_help(kdir, "Tredje udgave af hjælpen.")
    admin.command("reload", contains("genindlæst"))
    user.command("hjaelp", contains("Tredje udgave af hjælpen."))
    bot.check_alive()
