"""No Danish vocabulary in bot/'s Python: every word the code reads is in knowledge/lang/.

A string literal (docstrings aside) is flagged when it holds æ, ø or å, or a word of the
knowledge/lang word lists that is no English word and no part of a Python name in the
package. Command names (/slet, /mine_data) are the interface's identifiers and allowed.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import yaml

from bot.dialogs.commands import COMMANDS
from bot.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "bot"
LANG = PROJECT_ROOT / "knowledge" / "lang"
DANISH_LETTERS = re.compile("[æøåÆØÅ]")
WORD = re.compile(r"[^\W\d_]+")
# English words that the Danish lists hold because runners type them ("better", "pm"):
# in the code they are English (record values, log messages).
ENGLISH = frozenset(
    {"better", "strength", "which", "under", "over", "but", "normal", "usual", "same"}
)
# spaCy's data files are named by language code; "en" is also the Danish "a" (numbers.yaml).
DATA_FILES = (".json.gz",)
LANGUAGE_CODES = frozenset({"en", "da"})


def _vocabulary() -> frozenset[str]:
    words: set[str] = set()
    english: set[str] = set()
    for path in LANG.glob("*.yaml"):
        if path.name == "lemmas.yaml":
            continue
        for name, value in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            items = value if isinstance(value, list) else list(value)
            found = {w for item in items for w in str(item).lower().split()}
            (english if name.startswith("english") else words).update(found)
    return frozenset(words - english - ENGLISH)


def _name_parts() -> frozenset[str]:
    """Every part of every Python name in the package ("reminder_job" -> reminder, job)."""
    parts: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        source = io.StringIO(path.read_text(encoding="utf-8"))
        for token in tokenize.generate_tokens(source.readline):
            if token.type == tokenize.NAME:
                parts.update(token.string.lower().split("_"))
    return frozenset(parts)


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def danish_literals() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, literal, the Danish words in it) for every Danish literal in bot/."""
    danish = _vocabulary() - _name_parts()
    commands = {n for c in COMMANDS for n in (c.name, *c.aliases)}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PROJECT_ROOT)
        for line, value in _literals(path):
            if value in commands or value.startswith("#"):  # a command name; a colour
                continue
            letters = len(value) > 1 and DANISH_LETTERS.search(value)
            words = [w for w in WORD.findall(value.lower()) if w in danish]
            if value.endswith(DATA_FILES):  # "en_lemma_lookup.json.gz": a language code
                words = [w for w in words if w not in LANGUAGE_CODES]
            if letters or words:
                found.append((str(rel), line, value, words))
    return found


def test_no_danish_words_in_the_packages_string_literals() -> None:
    assert [(f, v) for f, _line, v, _words in danish_literals()] == []


def test_the_check_finds_a_danish_word_list(tmp_path: Path) -> None:
    """The check is not blind: the old time fillers, written in Python, are found."""
    sample = tmp_path / "sample.py"
    sample.write_text('FILLERS = frozenset({"klokken", "omkring", "præcis"})\n', "utf-8")
    danish = _vocabulary() - _name_parts()
    values = [v for _, v in _literals(sample)]
    assert [v for v in values if v in danish or DANISH_LETTERS.search(v)] == values
