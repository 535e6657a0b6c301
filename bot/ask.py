"""`python -m bot ask`: the matcher from the command line.

`ask --json` is a contract other tools rely on (shared/DESIGN.md, "Contracts").
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from typing import Any

from bot.answers import render
from bot.knowledge import Knowledge, KnowledgeError, load_knowledge
from bot.matching import Matcher
from bot.settings import SettingsError, load_settings


def load_all() -> tuple[Knowledge, Matcher]:
    """Knowledge and matcher from the settings' folders, loaded once."""
    settings = load_settings()
    kb = load_knowledge(settings.knowledge_dir, settings.intents_dir)
    return kb, Matcher.build(kb, settings.cache_dir)


@functools.cache
def shared() -> tuple[Knowledge, Matcher]:
    """One load per process, for tests and benchmarks that ask many questions."""
    return load_all()


def result(kb: Knowledge, matcher: Matcher, text: str, guide: str | None = None) -> dict[str, Any]:
    """The `ask --json` object for one message."""
    decision = matcher.decide(text, guide)
    rendered = render(kb, decision)
    ident: str | None = None
    title: str | None = None
    if decision.entry_id is not None:
        ident = decision.entry_id
        title = kb.entries[decision.entry_id].title
    elif decision.intent_id is not None:
        ident = decision.intent_id
        title = decision.intent_id
    return {
        "kind": decision.kind,
        "guide": decision.guide,
        "id": ident,
        "title": title,
        "text": rendered.text,
        "score": round(float(decision.score), 1),
    }


def ask_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot ask", description="answer one message")
    parser.add_argument("text", help='the message, or "-" to read one message per line from stdin')
    parser.add_argument("--json", action="store_true", help="print the JSON contract object")
    parser.add_argument("--guide", default=None, help="the user's guide (proximal, distal, hip)")
    args = parser.parse_args(list(argv))
    try:
        kb, matcher = load_all()
    except (KnowledgeError, SettingsError) as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.guide is not None and args.guide not in kb.guides:
        print(f"unknown guide {args.guide!r}; known: {sorted(kb.guides)}", file=sys.stderr)
        return 2
    if args.text == "-":
        for line in sys.stdin:
            out = result(kb, matcher, line.rstrip("\r\n"), args.guide)
            print(json.dumps(out, ensure_ascii=False), flush=True)
        return 0
    out = result(kb, matcher, args.text, args.guide)
    if args.json:
        print(json.dumps(out, ensure_ascii=False), flush=True)
    else:
        head = f"[{out['kind']}" + (f" {out['id']}" if out["id"] else "") + f" {out['score']}]"
        print(head)
        print(out["text"], flush=True)
    return 0
