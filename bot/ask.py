"""`python -m bot ask` and `python -m bot eval`: the matcher from the command line.

`ask --json` is a contract other tools rely on (shared/DESIGN.md, "Contracts");
`eval` scores an eval file so matching changes can be measured, not guessed.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.answers import render
from bot.knowledge import Knowledge, KnowledgeError, load_knowledge
from bot.matcher import Matcher
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


# ------------------------------------------------------------------------- eval


@dataclass(frozen=True)
class Case:
    id: str
    q: str
    expect: str
    guide: str = "any"
    any_of: tuple[str, ...] = ()
    style: str = "plain"


def load_cases(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    cases = []
    for raw in data:
        cases.append(
            Case(
                id=str(raw["id"]),
                q=str(raw["q"]),
                expect=str(raw["expect"]),
                guide=str(raw.get("guide") or "any"),
                any_of=tuple(str(x) for x in raw.get("any_of") or ()),
                style=str(raw.get("style") or "plain"),
            )
        )
    return cases


def passes(case: Case, out: dict[str, Any]) -> bool:
    """The scoring rules of shared/DESIGN.md, "Contracts"."""
    text = str(out["text"]).lower()
    if case.expect == "red_flag":
        return "læge" in text
    if case.expect == "fallback":
        return out["kind"] in {"fallback", "clarify", "intent"}
    if case.expect == "answer":
        if case.guide == "any" and out["kind"] == "clarify":
            return True
        if out["kind"] != "answer":
            return False
        if case.guide == "any":
            if out["guide"] not in {"proximal", "distal"}:
                return False
        elif out["guide"] != case.guide:
            return False
        return any(s.lower() in text for s in case.any_of)
    return False


@dataclass
class Report:
    total: int = 0
    passed: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    by_style: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[tuple[Case, dict[str, Any]]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def kind_accuracy(self, kind: str) -> float:
        p, t = self.by_kind.get(kind, [0, 0])
        return p / t if t else 1.0


def score_cases(kb: Knowledge, matcher: Matcher, cases: Sequence[Case]) -> Report:
    report = Report()
    for case in cases:
        out = result(kb, matcher, case.q, None)
        ok = passes(case, out)
        report.total += 1
        report.passed += ok
        for table, key in ((report.by_kind, case.expect), (report.by_style, case.style)):
            table[key][0] += ok
            table[key][1] += 1
        if not ok:
            report.failures.append((case, out))
    return report


def _pct(p: int, t: int) -> str:
    return f"{100 * p / t:5.1f}% ({p}/{t})" if t else "  n/a"


def format_report(report: Report) -> str:
    lines = [f"overall   {_pct(report.passed, report.total)}", "", "by expect:"]
    lines += [f"  {k:<14} {_pct(*v)}" for k, v in sorted(report.by_kind.items())]
    lines += ["", "by style:"]
    lines += [f"  {k:<14} {_pct(*v)}" for k, v in sorted(report.by_style.items())]
    if report.failures:
        lines += ["", f"failing ({len(report.failures)}):"]
        for case, out in report.failures:
            got = f"{out['kind']} {out['guide']} {out['id']} {out['score']}"
            lines.append(f"  {case.id}: {case.q[:90]!r}")
            lines.append(f"      expected {case.expect} ({case.guide}); got {got}")
    return "\n".join(lines)


def eval_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot eval", description="score an eval file")
    parser.add_argument("file", type=Path)
    args = parser.parse_args(list(argv))
    try:
        cases = load_cases(args.file)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        kb, matcher = load_all()
    except (KnowledgeError, SettingsError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(format_report(score_cases(kb, matcher, cases)))
    return 0
