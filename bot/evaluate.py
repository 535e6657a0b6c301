"""`python -m bot eval`: measure answering, never guess it.

`eval FILE.yaml` scores an eval file (the format of shared/eval/dev.yaml, plus an optional
`context`: the guide the user already chose). `eval --cv K` cross-validates over the
knowledge's own examples: the ranker is retrained without each fold and every held-out example
decided with no guide context and with its own guide chosen. Both print accuracy overall, per
expected kind, per style (or context) and per guide, then the failing cases.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.ask import load_all, result
from bot.fork import one_thread_each
from bot.knowledge import Knowledge, KnowledgeError
from bot.matching import Matcher
from bot.matching.cv import cross_validate, features_of
from bot.matching.dataset import OOS, intent_of, phrasings
from bot.matching.decision import decide
from bot.settings import SettingsError


@dataclass(frozen=True)
class Case:
    id: str
    q: str
    expect: str
    guide: str = "any"
    any_of: tuple[str, ...] = ()
    style: str = "plain"
    context: str | None = None  # the guide the user already chose


def load_cases(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [
        Case(
            id=str(raw["id"]),
            q=str(raw["q"]),
            expect=str(raw["expect"]),
            guide=str(raw.get("guide") or "any"),
            any_of=tuple(str(x) for x in raw.get("any_of") or ()),
            style=str(raw.get("style") or "plain"),
            context=raw.get("context") or raw.get("user_guide"),
        )
        for raw in data
    ]


def passes(case: Case, out: dict[str, Any], doctor_words: frozenset[str]) -> bool:
    """The scoring rules of shared/DESIGN.md, "Contracts" (a red flag names a doctor)."""
    text = str(out["text"]).lower()
    if case.expect == "red_flag":
        return any(w in text for w in doctor_words)
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
    by_guide: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, message, got

    def add(self, ok: bool, kind: str, style: str, guide: str) -> None:
        self.total += 1
        self.passed += ok
        for table, key in ((self.by_kind, kind), (self.by_style, style), (self.by_guide, guide)):
            table[key][0] += ok
            table[key][1] += 1

    @property
    def accuracy(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def kind_accuracy(self, kind: str) -> float:
        p, t = self.by_kind.get(kind, [0, 0])
        return p / t if t else 1.0


def score_cases(kb: Knowledge, matcher: Matcher, cases: Sequence[Case]) -> Report:
    report = Report()
    for case in cases:
        out = result(kb, matcher, case.q, case.context)
        ok = passes(case, out, kb.vocab.words("doctor_words"))
        guide = case.guide if case.expect == "answer" else case.expect
        report.add(ok, case.expect, case.style, guide)
        if not ok:
            got = f"{out['kind']} {out['guide']} {out['id']} {out['score']}"
            context = f" [context {case.context}]" if case.context else ""
            wanted = f"expected {case.expect} ({case.guide}){context}; got {got}"
            report.failures.append((case.id, case.q, wanted))
    return report


def cv_report(kb: Knowledge, matcher: Matcher, k: int) -> Report:
    """K-fold cross-validation over the knowledge's examples, decided as the bot decides."""
    items = phrasings(kb)
    with one_thread_each():
        held = cross_validate(kb, matcher.proc, items, features_of(matcher.proc, items), k)
    report = Report()
    for h in held:
        d = decide(kb, matcher.fusion, list(h.candidates))
        item = h.item
        if item.label == OOS:
            kind, ok = "fallback", d.kind in {"fallback", "clarify"}
        elif intent_of(item.label) is not None:
            kind, ok = "intent", d.kind == "intent" and d.intent_id == item.owner
        else:
            kind = "answer"
            by_guide = d.kind == "clarify" and h.context is None
            ok = item.owner in (d.entry_id, *d.also) or (
                by_guide and item.owner in {c.entry_id for c in d.candidates}
            )
        guide = item.guide or kind
        report.add(ok, kind, f"context {h.context}" if h.context else "no context", guide)
        if not ok:
            got = f"{d.kind} {d.entry_id or d.intent_id} {d.score}"
            report.failures.append((item.owner, item.text, f"[{h.context}] got {got}"))
    return report


def red_flag_report(kb: Knowledge, matcher: Matcher) -> list[str]:
    """Red flags measured on their own: recall over their examples, false alarms over their
    near misses and over every message the knowledge says is no red flag."""
    hits = sum(rf.id in matcher.red_flags(t) for rf in kb.red_flags for t in rf.examples)
    total = sum(len(rf.examples) for rf in kb.red_flags)
    near = [t for rf in kb.red_flags for t in rf.not_examples]
    ordinary = [t for e in kb.entries.values() for t in e.examples]
    ordinary += [t for i in kb.intents for t in i.examples]
    ordinary += [t for ts in kb.out_of_scope.values() for t in ts]
    lines = ["", "red flags:", f"  recall             {_pct(hits, total)}"]
    for name, texts in (("near misses", near), ("ordinary messages", ordinary)):
        alarms = sum(bool(matcher.red_flags(t)) for t in texts)
        lines.append(f"  false alarms on {name:<18} {_pct(alarms, len(texts))}")
    return lines


def _pct(p: int, t: int) -> str:
    return f"{100 * p / t:5.1f}% ({p}/{t})" if t else "  n/a"


def format_report(report: Report, max_failures: int | None = None) -> str:
    lines = [f"overall   {_pct(report.passed, report.total)}"]
    for title, table in (
        ("by expect", report.by_kind),
        ("by style", report.by_style),
        ("by guide", report.by_guide),
    ):
        lines += ["", f"{title}:"]
        lines += [f"  {k:<18} {_pct(*v)}" for k, v in sorted(table.items())]
    if report.failures:
        shown = report.failures if max_failures is None else report.failures[:max_failures]
        lines += ["", f"failing ({len(report.failures)}):"]
        for ident, q, got in shown:
            lines.append(f"  {ident}: {q[:90]!r}")
            lines.append(f"      {got}")
        if len(shown) < len(report.failures):
            lines.append(f"  ... and {len(report.failures) - len(shown)} more")
    return "\n".join(lines)


def eval_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot eval", description="measure answering")
    parser.add_argument("file", type=Path, nargs="?", help="an eval file (dev.yaml format)")
    parser.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation instead")
    parser.add_argument("--failures", type=int, default=None, help="show at most N failures")
    args = parser.parse_args(list(argv))
    if (args.file is None) == (args.cv is None):
        parser.error("give an eval file or --cv K")
    if args.cv is not None and args.cv < 2:
        parser.error("--cv needs K >= 2")
    cases: list[Case] = []
    if args.file is not None:
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
    report = cv_report(kb, matcher, args.cv) if args.cv else score_cases(kb, matcher, cases)
    print(format_report(report, args.failures))
    if args.cv:
        print("\n".join(red_flag_report(kb, matcher)))
    return 0
