"""YAML documents with line numbers: every problem reported as `path:line: message`.

A maintainer's mistake (bad syntax, a duplicate key, a field of the wrong kind) is
collected, not raised, so one run of the validator lists all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

_M = TypeVar("_M", bound=BaseModel)
# libyaml's loader is ~15x faster than the pure-Python one (start-up time); same results.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str
    warning: bool = False  # worth a look, but the knowledge is still usable

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {kind}{self.message}"


class KnowledgeError(Exception):
    """Every problem found in the YAML, reported together."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def _line_of(node: yaml.Node | None, loc: Iterable[object]) -> int:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for knode, vnode in node.value:
                if str(knode.value) == str(key):
                    node = vnode
                    line = knode.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if 0 <= key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                return line
        else:
            return line
    return line


@dataclass
class Doc:
    rel: str
    node: yaml.Node | None
    data: Any

    def line(self, *loc: object) -> int:
        return _line_of(self.node, loc)


class Collector:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def add(self, rel: str, line: int, message: str) -> None:
        self.problems.append(Problem(rel, line, message))

    def read(self, path: Path) -> Doc | None:
        rel = self.rel(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(rel, 1, "file is missing")
            return None
        except UnicodeDecodeError as exc:
            self.add(rel, 1, f"not UTF-8 text ({exc.reason})")
            return None
        try:
            node, data = _compose_and_construct(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            self.add(rel, line, f"YAML syntax error: {exc.problem or exc}")
            return None
        except yaml.YAMLError as exc:
            self.add(rel, 1, f"YAML error: {exc}")
            return None
        check_duplicate_keys(node, rel, self)
        return Doc(rel, node, data)

    def parse(self, doc: Doc, model: type[_M]) -> _M | None:
        if not isinstance(doc.data, dict):
            self.add(doc.rel, 1, "expected a mapping at the top of the file")
            return None
        try:
            return model.model_validate(doc.data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                where = ".".join(str(p) for p in loc)
                self.add(doc.rel, doc.line(*loc), f"{where}: {err['msg']}")
            return None


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, object]:
    """The node tree (for line numbers and duplicate keys) and the data built from that same
    tree: one parse instead of two (start-up reads every YAML file)."""
    loader = _YamlLoader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def check_duplicate_keys(node: yaml.Node | None, rel: str, out: Collector) -> None:
    """PyYAML silently keeps the last of two equal keys; a maintainer would lose text."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = str(knode.value)
            if key in seen:
                out.add(rel, knode.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
            check_duplicate_keys(vnode, rel, out)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            check_duplicate_keys(item, rel, out)


def walk_yaml(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())
