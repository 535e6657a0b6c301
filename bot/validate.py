"""`python -m bot validate`: every mistake in the YAML as `path:line: message`.

Besides the YAML itself it checks the cross-references (bot/references.py): texts the
code asks for, texts no code uses (warnings), intents' actions, tests and not_tests.
Then it asks the matcher's cross-validation (cached with the matcher) which examples a model
trained without them would answer with another entry or intent: an example that really asks
another entry's question, or an entry whose examples say too little. Those are warnings
(exit 0) unless `--strict`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from bot.knowledge import Knowledge, load_knowledge
from bot.settings import load_settings

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item)
    elif isinstance(node, yaml.MappingNode):
        for _key, value in node.value:
            yield from _scalars(value)


def example_lines(root: Path, folders: list[Path]) -> dict[str, tuple[str, int]]:
    """Every phrasing written in the YAML -> (path, line) of its first occurrence."""
    where: dict[str, tuple[str, int]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            try:
                node = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
            except (OSError, yaml.YAMLError):
                continue
            if node is None:
                continue
            rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            for scalar in _scalars(node):
                where.setdefault(str(scalar.value).strip(), (rel, scalar.start_mark.line + 1))
    return where


def takeovers(kb: Knowledge, cache_dir: Path | None) -> list[tuple[str, str]]:
    """(example, decided as) for examples cross-validation answers with another entry, in the
    example's own guide (where its entry has every advantage)."""
    from bot.matching import Matcher
    from bot.matching.dataset import OOS, intent_of

    matcher = Matcher.build(kb, cache_dir)
    found: list[tuple[str, str]] = []
    for h in matcher.held_out:
        label, owner = str(h["label"]), str(h["owner"])
        is_entry = label != OOS and intent_of(label) is None
        if h["context"] != (kb.entry_guide.get(owner) if is_entry else None):
            continue
        decided = (
            h["entry"] if h["kind"] == "answer" else h["intent"] if h["kind"] == "intent" else None
        )
        if decided is not None and owner not in (decided, h.get("also")):
            found.append((str(h["text"]), str(decided)))
    return found


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot validate", description=__doc__)
    parser.add_argument("--knowledge", help="knowledge folder (default: from settings)")
    parser.add_argument("--intents", help="intents folder (default: from settings)")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation check")
    parser.add_argument("--strict", action="store_true", help="cross-validation warnings fail")
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
    if args.no_cv:
        return 0
    kb = load_knowledge(kdir, idir)
    root = kdir.resolve().parent
    lines = example_lines(root, [kdir.resolve(), idir.resolve()])
    found = takeovers(kb, settings.cache_dir)
    for text, decided in found:
        path, line = lines.get(text.strip(), ("?", 0))
        print(f'{path}:{line}: example "{text}" is decided as {decided}')
    if found:
        print(
            f"{len(found)} example(s) that cross-validation answers with another entry "
            "(reword them, move them, or give their entry more examples)"
        )
    return 1 if found and args.strict else 0
