"""`python -m bot validate`: every mistake in the YAML as `path:line: message`."""

from __future__ import annotations

import argparse
import sys

from bot.knowledge import validate
from bot.settings import load_settings


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot validate", description=__doc__)
    parser.add_argument("--knowledge", help="knowledge folder (default: from settings)")
    parser.add_argument("--intents", help="intents folder (default: from settings)")
    args = parser.parse_args(argv)
    settings = load_settings()
    from pathlib import Path

    kdir = Path(args.knowledge) if args.knowledge else settings.knowledge_dir
    idir = Path(args.intents) if args.intents else settings.intents_dir
    problems = validate(kdir, idir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print("knowledge OK")
    return 0
