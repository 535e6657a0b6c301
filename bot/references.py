"""Cross-references between the code and the YAML, checked as home-assistant/intents does.

* every text key the code asks for (`t("key")`, `say("key")`, `text("key")`) exists;
  a key built from a prefix (`f"checkin_q_{step}"`) has at least one text;
* a text no code can reach is reported as a warning;
* every intent's action is a command of the registry, or "reply";
* every intent has `tests` and `not_tests` (they are run as tests).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.dialogs.commands import ACTIONS
from bot.knowledge import Knowledge, KnowledgeError, Problem, load_knowledge

PACKAGE = Path(__file__).resolve().parent
TEXT_CALLS = frozenset({"t", "say", "text"})
KEY = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class _Uses:
    asked: frozenset[tuple[str, str, int]]  # (key, file, line) passed to a text call
    asked_prefixes: frozenset[tuple[str, str, int]]  # (f-string head, file, line) passed
    literals: frozenset[str]  # every string constant in the package
    prefixes: frozenset[str]  # the leading text of every f-string


@lru_cache(maxsize=1)
def _scan(package: Path = PACKAGE) -> _Uses:
    asked: set[tuple[str, str, int]] = set()
    asked_prefixes: set[tuple[str, str, int]] = set()
    literals: set[str] = set()
    prefixes: set[str] = set()
    for path in sorted(package.rglob("*.py")):
        rel = str(path.relative_to(package.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            elif isinstance(node, ast.JoinedStr) and node.values:
                head = node.values[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    prefixes.add(head.value)
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = node.args[0]
                key = arg.value if isinstance(arg, ast.Constant) else None
                if name in TEXT_CALLS and isinstance(key, str) and KEY.fullmatch(key):
                    asked.add((key, rel, node.lineno))
                first = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else None
                start = first.value if isinstance(first, ast.Constant) else None
                if name in TEXT_CALLS and isinstance(start, str) and KEY.fullmatch(start):
                    asked_prefixes.add((start, rel, node.lineno))
    return _Uses(
        frozenset(asked), frozenset(asked_prefixes), frozenset(literals), frozenset(prefixes)
    )


def _text_places(knowledge_dir: Path) -> dict[str, tuple[str, int]]:
    """Where each text key is written: (path relative to the project, line)."""
    root = knowledge_dir.resolve().parent
    places: dict[str, tuple[str, int]] = {}
    for path in sorted((knowledge_dir / "texts").glob("*.yaml")):
        rel = str(path.resolve().relative_to(root))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            key, colon, _ = line.partition(":")
            if colon and KEY.fullmatch(key):
                places.setdefault(key, (rel, number))
    return places


def _text_problems(kb: Knowledge, knowledge_dir: Path) -> list[Problem]:
    uses = _scan()
    places = _text_places(knowledge_dir)
    problems = [
        Problem(rel, line, f"the code asks for text {key!r}; add it to knowledge/texts/")
        for key, rel, line in sorted(uses.asked, key=lambda a: (a[1], a[2]))
        if key not in kb.texts
    ]
    problems += [
        Problem(rel, line, f"the code asks for texts {prefix}...; none is in knowledge/texts/")
        for prefix, rel, line in sorted(uses.asked_prefixes, key=lambda a: (a[1], a[2]))
        if not any(key.startswith(prefix) for key in kb.texts)
    ]
    prefixes = [p for p in uses.prefixes if p and p.replace("_", "").isalnum() and p.endswith("_")]
    for key in sorted(kb.texts):
        if key in uses.literals or any(key.startswith(p) for p in prefixes):
            continue
        rel, line = places.get(key, ("knowledge/texts", 1))
        problems.append(Problem(rel, line, f"text {key!r} is used by no code", warning=True))
    return problems


def _intent_problems(intents_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    root = intents_dir.resolve().parent
    for path in sorted(intents_dir.glob("*.yaml")):
        rel = str(path.resolve().relative_to(root))
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # the loader reports these
        if not isinstance(data, dict):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()

        def line_of(key: str, lines: list[str] = lines) -> int:
            return next((i + 1 for i, ln in enumerate(lines) if ln.startswith(f"{key}:")), 1)

        action = data.get("action")
        if action not in ACTIONS:
            problems.append(
                Problem(
                    rel,
                    line_of("action"),
                    f"unknown action {action!r}; use one of {sorted(ACTIONS)}",
                )
            )
        for key in ("tests", "not_tests"):
            if not data.get(key):
                problems.append(
                    Problem(rel, line_of(key), f"intent needs {key} (phrasings run as tests)")
                )
    return problems


def validate_all(knowledge_dir: Path, intents_dir: Path) -> tuple[Knowledge | None, list[Problem]]:
    """The knowledge (None when it cannot be loaded) and every problem: YAML and references."""
    try:
        kb: Knowledge | None = load_knowledge(knowledge_dir, intents_dir)
        problems: list[Problem] = []
    except KnowledgeError as exc:
        kb, problems = None, list(exc.problems)
    problems += _intent_problems(intents_dir)
    if kb is not None:
        problems += _text_problems(kb, knowledge_dir)
    return kb, problems


def load_checked(knowledge_dir: Path, intents_dir: Path) -> Knowledge:
    """The knowledge; KnowledgeError listing every error when it is broken or incomplete."""
    kb, problems = validate_all(knowledge_dir, intents_dir)
    errors = [p for p in problems if not p.warning]
    if kb is None or errors:
        raise KnowledgeError(errors)
    return kb
