"""The command registry: one entry makes the menu, the help, the router and the intents."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogs import commands
from bot.engine import MENU_COMMANDS, Engine
from bot.replies import Incoming
from bot.storage import Database
from tests.engine_helpers import Chat, Clock, make_engine


@pytest.fixture
def engine(database: Database, tmp_path: Path) -> Engine:
    return make_engine(database, tmp_path / "cache", Clock())


def test_the_menu_is_the_registry_in_order(engine: Engine) -> None:
    names = [c.name for c in commands.COMMANDS if c.menu]
    assert list(MENU_COMMANDS) == names
    assert [name for name, _ in engine.menu_commands()] == names
    assert all(description for _, description in engine.menu_commands())


def test_help_lists_every_menu_command_with_its_menu_text(engine: Engine) -> None:
    text = Chat(engine).say("/hjaelp")[0].text
    for name, description in engine.menu_commands():
        assert f"/{name} – {description}" in text
    assert "/reload" not in text


def test_an_alias_reaches_the_same_command(engine: Engine) -> None:
    assert Chat(engine).say("/help")[0].text == Chat(engine, 2).say("/hjaelp")[0].text


def test_every_intent_action_is_a_registered_command_or_a_reply(engine: Engine) -> None:
    for intent in engine.kb.intents:
        assert intent.action in commands.ACTIONS, intent.id


def test_a_personal_command_in_a_group_points_to_the_private_chat(engine: Engine) -> None:
    group = Incoming.parse_text(1001, -500, "/checkin")
    assert engine.handle(group)[0].text == engine.kb.text("private_only")
    public = Incoming.parse_text(1001, -500, "/privatliv")
    assert engine.handle(public)[0].text == engine.kb.text("privacy")


def test_the_admin_command_is_refused_to_others(engine: Engine) -> None:
    assert Chat(engine, 5).say("/reload")[0].text == engine.kb.text("not_admin")
