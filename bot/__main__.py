"""Command line: `python -m bot <command>`; each command lives with the module it drives."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

# command -> (module, function, one-line help). Each function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "bot.telegram_app",
        "run_main",
        "start the bot (Telegram with a token, else the console chat)",
    ),
    "chat": ("bot.console", "chat_main", "chat with the bot in this terminal"),
    "ask": ("bot.ask", "ask_main", "answer one message (or one per line from stdin with -)"),
    "eval": ("bot.evaluate", "eval_main", "score an eval file (or --cv K: cross-validate)"),
    "validate": ("bot.validate", "validate_main", "check knowledge/ and intents/ for mistakes"),
    "db": ("bot.storage", "db_main", "database commands: upgrade, current"),
    "gaps": ("bot.gaps", "gaps_main", "questions the bot could not answer, grouped"),
    "stats": ("bot.maintenance", "stats_main", "usage figures"),
}


def _usage() -> str:
    lines = ["usage: python -m bot <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    func: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), func_name)
    return func(rest)


if __name__ == "__main__":
    sys.exit(main())
