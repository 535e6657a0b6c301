"""`python -m bot validate`: every mistake in the YAML as `path:line: message`.

Besides the YAML itself it checks the cross-references (bot/references.py): texts the
code asks for, texts no code uses (warnings), intents' actions, tests and not_tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.settings import load_settings


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot validate", description=__doc__)
    parser.add_argument("--knowledge", help="knowledge folder (default: from settings)")
    parser.add_argument("--intents", help="intents folder (default: from settings)")
    args = parser.parse_args(argv)
    settings = load_settings()
    kdir = Path(args.knowledge) if args.knowledge else settings.knowledge_dir
    idir = Path(args.intents) if args.intents else settings.intents_dir
    from bot.references import validate_all  # imports the dialogue (and the matcher)

    _kb, problems = validate_all(kdir, idir)
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        print(problem, file=sys.stderr)
    if errors:
        print(f"{len(errors)} problem(s) found", file=sys.stderr)
        return 1
    print("knowledge OK" + (f" ({len(problems)} warning(s))" if problems else ""))
    return 0
