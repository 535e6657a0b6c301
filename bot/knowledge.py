"""Load and validate everything the bot knows and says from YAML.

Maintainers edit knowledge/ and intents/; this module turns those files into
typed objects and reports every mistake at once as `path:line: message`, so a
broken edit is caught by `python -m bot validate` (and by /reload) before it
reaches a runner.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import vocabulary
from bot.vocabulary import Vocabulary

TELEGRAM_TEXT_LIMIT = 4096
ID_PATTERN = r"^[a-z0-9_.]+$"
# Longest id that still fits a callback payload such as "fb:+:<id>" or "pick:<id>".
MAX_ID_BYTES = 40

_M = TypeVar("_M", bound=BaseModel)
# libyaml's loader is ~15x faster than the pure-Python one (start-up time); same results.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


NonEmpty = Field(min_length=1)


class Guide(_Model):
    """One of the three guides: its id is part of the `ask --json` contract."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = NonEmpty
    source: str = Field(min_length=1, description="How replies name this guide as a source")
    file: str = Field(min_length=1, description="The guide's full text, relative to knowledge/")
    short: str = Field(min_length=1, description="Button label when asking which guide")
    hamstring: bool = False
    context_words: list[str] = Field(default_factory=list)
    # Words that point to this guide only when nothing else does: the proximal guide
    # calls its subject plain "hasetendinopati", so the bare word means proximal unless
    # the message or the user's chosen guide says otherwise.
    weak_context_words: list[str] = Field(default_factory=list)


class GuidesFile(_Model):
    guides: list[Guide] = Field(min_length=1)


class Entry(_Model):
    """A FAQ answer or a guide section: example phrasings kept apart from the quoted answer."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    title: str = NonEmpty
    source: str = NonEmpty
    text: str = NonEmpty
    examples: list[str] = Field(min_length=2)
    topic: str | None = Field(default=None, pattern=ID_PATTERN)
    phase: int | None = Field(default=None, ge=1, le=4)
    related: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    # Extra the bot adds after the quote: "traffic_light" shows the zones of
    # traffic_light.yaml (the guides' own table of them was a picture).
    attach: Literal["traffic_light"] | None = None

    @field_validator("examples", "keywords")
    @classmethod
    def _no_blank(cls, items: list[str]) -> list[str]:
        if any(not item.strip() for item in items):
            raise ValueError("must not contain empty phrasings")
        return items


class GuideKnowledgeFile(_Model):
    guide: str = Field(pattern=ID_PATTERN)
    faq: list[Entry] = Field(default_factory=list)
    sections: list[Entry] = Field(default_factory=list)


class RedFlag(_Model):
    """A warning sign from the guides; matching is by groups of alternative terms."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    guides: list[str] = Field(min_length=1)
    guide_text: str = Field(min_length=1, description="The red flag in the guide's own words")
    all_of: list[list[str]] = Field(min_length=1)
    none_of: list[str] = Field(default_factory=list)
    min_weeks: int | None = Field(default=None, ge=1)
    examples: list[str] = Field(min_length=1)
    not_examples: list[str] = Field(default_factory=list)

    @field_validator("all_of")
    @classmethod
    def _groups_not_empty(cls, groups: list[list[str]]) -> list[list[str]]:
        if any(not group or any(not t.strip() for t in group) for group in groups):
            raise ValueError("every group needs at least one non-empty term")
        return groups


class RedFlagsFile(_Model):
    red_flags: list[RedFlag] = Field(min_length=1)


class LemmasFile(_Model):
    """knowledge/lang/lemmas.yaml: form -> lemma fixes for spaCy's Danish lookup table."""

    lemmas: dict[str, str] = Field(default_factory=dict)


class SynonymsFile(_Model):
    """canonical word -> variants users type (slang, English, split compounds)."""

    synonyms: dict[str, list[str]]


class OutOfScopeTopic(_Model):
    topic: str = Field(pattern=ID_PATTERN)
    examples: list[str] = Field(min_length=1)

    @field_validator("examples")
    @classmethod
    def _no_blank(cls, items: list[str]) -> list[str]:
        if any(not item.strip() for item in items):
            raise ValueError("must not contain empty phrasings")
        return items


class OutOfScopeFile(_Model):
    """Things the guides do not answer: the matcher learns to say so from them."""

    out_of_scope: list[OutOfScopeTopic] = Field(default_factory=list)


class Zone(_Model):
    id: Literal["green", "yellow", "red"]
    label: str = NonEmpty
    symbol: str = NonEmpty
    max_pain: int = Field(ge=0, le=10)
    progression: bool = False
    advice: dict[str, str] = Field(min_length=1)


class TrendRules(_Model):
    green_streak_days: int = Field(default=3, ge=2)
    red_streak_days: int = Field(default=2, ge=2)
    no_improvement_weeks: int = Field(default=6, ge=1)
    window_days: int = Field(default=7, ge=1, le=31)
    empty_symbol: str = "⚪"


class TrafficLight(_Model):
    source: str = NonEmpty
    morning_worse_zone: Literal["green", "yellow", "red"] = "red"
    zones: list[Zone] = Field(min_length=3, max_length=3)
    trend: TrendRules = TrendRules()

    def zone_for(self, pain: int, morning_worse: bool) -> Zone:
        """Pain during/after activity picks the zone; a worse morning overrides it."""
        if morning_worse:
            return self.zone(self.morning_worse_zone)
        for zone in sorted(self.zones, key=lambda z: z.max_pain):
            if pain <= zone.max_pain:
                return zone
        return max(self.zones, key=lambda z: z.max_pain)

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)


class Intent(_Model):
    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    action: str = Field(pattern=ID_PATTERN)
    reply: str | None = None
    examples: list[str] = Field(min_length=2)
    tests: list[str] = Field(default_factory=list)
    not_tests: list[str] = Field(default_factory=list)

    # A command's action from bot/dialogs/commands.py, or "reply"; checked by bot/references.py.


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


@dataclass(frozen=True)
class Knowledge:
    """Everything loaded from knowledge/ and intents/, ready for the engine."""

    guides: dict[str, Guide]
    entries: dict[str, Entry]
    entry_guide: dict[str, str]
    entry_kind: dict[str, Literal["faq", "section"]]
    guide_texts: dict[str, str]
    red_flags: list[RedFlag]
    synonyms: dict[str, list[str]]
    traffic_light: TrafficLight
    texts: dict[str, str]
    intents: list[Intent]
    lemmas: dict[str, str] = field(default_factory=dict)
    vocab: Vocabulary = field(default_factory=Vocabulary)
    out_of_scope: dict[str, list[str]] = field(default_factory=dict)
    fingerprint: str = ""
    _formatter: string.Formatter = field(default_factory=string.Formatter, repr=False)

    def text(self, key: str, **values: object) -> str:
        """A bot text by key, with `{placeholders}` filled in."""
        try:
            template = self.texts[key]
        except KeyError:
            raise KeyError(f"missing bot text {key!r} in knowledge/texts/") from None
        return template.format(**values) if values else template

    def entries_of(self, guide: str) -> list[Entry]:
        return [e for eid, e in self.entries.items() if self.entry_guide[eid] == guide]


# --------------------------------------------------------------------------- YAML


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
class _Doc:
    rel: str
    node: yaml.Node | None
    data: Any

    def line(self, *loc: object) -> int:
        return _line_of(self.node, loc)


class _Collector:
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

    def read(self, path: Path) -> _Doc | None:
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
            node = yaml.compose(text, Loader=_YamlLoader)
            data = yaml.load(text, Loader=_YamlLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            self.add(rel, line, f"YAML syntax error: {exc.problem or exc}")
            return None
        except yaml.YAMLError as exc:
            self.add(rel, 1, f"YAML error: {exc}")
            return None
        _check_duplicate_keys(node, rel, self)
        return _Doc(rel, node, data)

    def parse(self, doc: _Doc, model: type[_M]) -> _M | None:
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


def _check_duplicate_keys(node: yaml.Node | None, rel: str, out: _Collector) -> None:
    """PyYAML silently keeps the last of two equal keys; a maintainer would lose text."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = str(knode.value)
            if key in seen:
                out.add(rel, knode.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
            _check_duplicate_keys(vnode, rel, out)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, rel, out)


# --------------------------------------------------------------------- verbatim

_BULLET = re.compile(r"^\s*(?:[-•*–]|\d+[.)])\s+")
_SPACE = re.compile(r"\s+")


def _norm_quote(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return _SPACE.sub(" ", text).strip()


def quote_lines(text: str) -> list[str]:
    """The lines of an answer text without list bullets: each must stand in the guide."""
    lines = []
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        line = line.removesuffix("…").removesuffix("...").removeprefix("…").strip()
        if line:
            lines.append(line)
    return lines


def _guide_haystack(text: str) -> str:
    return _norm_quote("\n".join(_BULLET.sub("", ln) for ln in text.splitlines()))


# ------------------------------------------------------------------------ load


def _walk_yaml(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def _load_guides(out: _Collector, kdir: Path) -> tuple[dict[str, Guide], dict[str, str]]:
    guides: dict[str, Guide] = {}
    guide_texts: dict[str, str] = {}
    guides_doc = out.read(kdir / "guides.yaml")
    if guides_doc and (gf := out.parse(guides_doc, GuidesFile)):
        for i, g in enumerate(gf.guides):
            if g.id in guides:
                out.add(
                    guides_doc.rel,
                    guides_doc.line("guides", i, "id"),
                    f"duplicate guide id {g.id!r}",
                )
            guides[g.id] = g
            gpath = kdir / g.file
            try:
                guide_texts[g.id] = gpath.read_text(encoding="utf-8")
            except OSError:
                out.add(
                    guides_doc.rel,
                    guides_doc.line("guides", i, "file"),
                    f"guide file {g.file!r} not found",
                )

    return guides, guide_texts


def _load_entries(
    out: _Collector, kdir: Path, guides: dict[str, Guide], guide_texts: dict[str, str]
) -> tuple[dict[str, Entry], dict[str, str], dict[str, Literal["faq", "section"]]]:
    """FAQ entries and sections of every guide file; answers must quote their guide."""
    entries: dict[str, Entry] = {}
    entry_guide: dict[str, str] = {}
    entry_kind: dict[str, Literal["faq", "section"]] = {}
    entry_where: dict[str, tuple[str, int]] = {}
    special = {
        "guides.yaml",
        "red_flags.yaml",
        "synonyms.yaml",
        "traffic_light.yaml",
        "out_of_scope.yaml",
    }
    for path in _walk_yaml(kdir):
        if path.name in special:
            continue
        doc = out.read(path)
        if not doc:
            continue
        gk = out.parse(doc, GuideKnowledgeFile)
        if not gk:
            continue
        if guides and gk.guide not in guides:
            out.add(
                doc.rel, doc.line("guide"), f"unknown guide {gk.guide!r}; known: {sorted(guides)}"
            )
        haystack = _guide_haystack(guide_texts.get(gk.guide, ""))
        kinds: tuple[tuple[Literal["faq", "section"], str, list[Entry]], ...] = (
            ("faq", "faq", gk.faq),
            ("section", "sections", gk.sections),
        )
        for kind, key, items in kinds:
            for i, entry in enumerate(items):
                line = doc.line(key, i, "id")
                if entry.id in entries:
                    first = entry_where[entry.id]
                    out.add(
                        doc.rel, line, f"duplicate id {entry.id!r} (first at {first[0]}:{first[1]})"
                    )
                    continue
                entries[entry.id] = entry
                entry_guide[entry.id] = gk.guide
                entry_kind[entry.id] = kind
                entry_where[entry.id] = (doc.rel, line)
                if haystack:
                    for qline in quote_lines(entry.text):
                        if _norm_quote(qline) not in haystack:
                            out.add(
                                doc.rel,
                                doc.line(key, i, "text"),
                                f"{entry.id}: text is not quoted verbatim from the guide: "
                                f"{qline[:70]!r}",
                            )
                if len(entry.text) + len(entry.source) + 200 > TELEGRAM_TEXT_LIMIT:
                    out.add(
                        doc.rel,
                        doc.line(key, i, "text"),
                        f"{entry.id}: answer too long for one Telegram message",
                    )
    for eid, entry in entries.items():
        rel, line = entry_where[eid]
        for ref in entry.related:
            if ref not in entries:
                out.add(rel, line, f"{eid}: related id {ref!r} does not exist")

    return entries, entry_guide, entry_kind


def _load_red_flags(
    out: _Collector, kdir: Path, guides: dict[str, Guide], guide_texts: dict[str, str]
) -> list[RedFlag]:
    red_flags: list[RedFlag] = []
    rf_doc = out.read(kdir / "red_flags.yaml")
    if rf_doc and (rff := out.parse(rf_doc, RedFlagsFile)):
        seen_rf: set[str] = set()
        for i, rf in enumerate(rff.red_flags):
            if rf.id in seen_rf:
                out.add(
                    rf_doc.rel,
                    rf_doc.line("red_flags", i, "id"),
                    f"duplicate red flag id {rf.id!r}",
                )
            seen_rf.add(rf.id)
            for gid in rf.guides:
                if guides and gid not in guides:
                    out.add(
                        rf_doc.rel, rf_doc.line("red_flags", i, "guides"), f"unknown guide {gid!r}"
                    )
            texts_of = [guide_texts.get(g, "") for g in rf.guides if g in guide_texts]
            if texts_of and not any(
                _norm_quote(rf.guide_text) in _guide_haystack(t) for t in texts_of
            ):
                out.add(
                    rf_doc.rel,
                    rf_doc.line("red_flags", i, "guide_text"),
                    f"{rf.id}: guide_text is not quoted verbatim from its guides",
                )
        red_flags = list(rff.red_flags)

    return red_flags


def _load_synonyms(out: _Collector, kdir: Path) -> dict[str, list[str]]:
    synonyms: dict[str, list[str]] = {}
    syn_doc = out.read(kdir / "synonyms.yaml")
    if syn_doc and (sf := out.parse(syn_doc, SynonymsFile)):
        owner: dict[str, str] = {}
        for canon, variants in sf.synonyms.items():
            for v in variants:
                key = v.strip().lower()
                if not key:
                    out.add(syn_doc.rel, syn_doc.line("synonyms", canon), f"{canon}: empty variant")
                elif key in owner and owner[key] != canon:
                    out.add(
                        syn_doc.rel,
                        syn_doc.line("synonyms", canon),
                        f"variant {v!r} is listed under both {owner[key]!r} and {canon!r}",
                    )
                owner[key] = canon
        synonyms = dict(sf.synonyms)

    return synonyms


def _load_traffic_light(
    out: _Collector, kdir: Path, guides: dict[str, Guide]
) -> TrafficLight | None:
    traffic_light: TrafficLight | None = None
    tl_doc = out.read(kdir / "traffic_light.yaml")
    if tl_doc and (tl := out.parse(tl_doc, TrafficLight)):
        ids = [z.id for z in tl.zones]
        if sorted(ids) != ["green", "red", "yellow"]:
            out.add(tl_doc.rel, tl_doc.line("zones"), "zones must be exactly green, yellow and red")
        bounds = [
            z.max_pain
            for z in sorted(tl.zones, key=lambda z: ["green", "yellow", "red"].index(z.id))
        ]
        if bounds != sorted(set(bounds)) or (bounds and bounds[-1] != 10):
            out.add(
                tl_doc.rel,
                tl_doc.line("zones"),
                "max_pain must rise green < yellow < red, and red must be 10",
            )
        for zi, zone in enumerate(tl.zones):
            if "default" not in zone.advice:
                out.add(
                    tl_doc.rel,
                    tl_doc.line("zones", zi, "advice"),
                    f"zone {zone.id}: advice needs a 'default'",
                )
            for gid in zone.advice:
                if gid != "default" and guides and gid not in guides:
                    out.add(
                        tl_doc.rel,
                        tl_doc.line("zones", zi, "advice", gid),
                        f"unknown guide {gid!r}",
                    )
        traffic_light = tl

    return traffic_light


def _load_lemmas(out: _Collector, kdir: Path) -> dict[str, str]:
    lemmas: dict[str, str] = {}
    lemma_path = kdir / "lang" / "lemmas.yaml"
    if lemma_path.exists():
        lemma_doc = out.read(lemma_path)
        if lemma_doc and (lf := out.parse(lemma_doc, LemmasFile)):
            for form, lemma in lf.lemmas.items():
                if (
                    not form.strip()
                    or not lemma.strip()
                    or form != form.lower()
                    or lemma != lemma.lower()
                ):
                    out.add(
                        lemma_doc.rel,
                        lemma_doc.line("lemmas", form),
                        f"{form!r}: forms and lemmas must be non-empty and lowercase",
                    )
            lemmas = dict(lf.lemmas)

    return lemmas


def _load_vocabulary(out: _Collector, kdir: Path) -> Vocabulary:
    """The word lists of knowledge/lang/ (see bot/vocabulary.py for what each is for)."""
    lists: dict[str, tuple[str, ...]] = {}
    mappings: dict[str, dict[str, int]] = {}
    where: dict[str, str] = {}
    for path in _walk_yaml(kdir / "lang"):
        if path.name in vocabulary.NOT_WORD_LISTS:
            continue
        doc = out.read(path)
        if not doc:
            continue
        if not isinstance(doc.data, dict):
            out.add(doc.rel, 1, "expected a mapping of list names to word lists")
            continue
        for name, value in doc.data.items():
            line = doc.line(name)
            name = str(name)
            if name in where:
                out.add(doc.rel, line, f"word list {name!r} is also defined in {where[name]}")
                continue
            where[name] = doc.rel
            if name in vocabulary.LISTS:
                words = value if isinstance(value, list) else None
                if words and any(isinstance(w, bool) for w in words):
                    out.add(doc.rel, line, f'{name}: YAML read a word as yes/no; quote it: "no"')
                    continue
                if not words or not all(isinstance(w, str) and w.strip() for w in words):
                    out.add(doc.rel, line, f"{name}: must be a non-empty list of words")
                    continue
                bad = [w for w in words if w != w.strip().lower()]
                if bad:
                    out.add(doc.rel, line, f"{name}: words must be lowercase: {bad[:3]}")
                twice = sorted({w for w in words if words.count(w) > 1})
                if twice:
                    out.add(doc.rel, line, f"{name}: listed twice: {twice[:3]}")
                lists[name] = tuple(w.strip().lower() for w in words)
            elif name in vocabulary.MAPPINGS:
                ok = isinstance(value, dict) and all(
                    isinstance(k, str) and k == k.lower() and isinstance(v, int)
                    for k, v in value.items()
                )
                if not ok or not value:
                    out.add(doc.rel, line, f"{name}: must map lowercase words to whole numbers")
                    continue
                mappings[name] = dict(value)
            else:
                out.add(doc.rel, line, f"{name!r} is a word list no code reads")
    rel = out.rel(kdir / "lang")
    for name in [*vocabulary.LISTS, *vocabulary.MAPPINGS]:
        if name not in where:
            out.add(rel, 1, f"word list {name!r} is missing (the code needs it)")
    return Vocabulary(lists, mappings)


def _load_out_of_scope(out: _Collector, kdir: Path) -> dict[str, list[str]]:
    """knowledge/out_of_scope.yaml: what the guides do not answer, by topic (optional)."""
    path = kdir / "out_of_scope.yaml"
    if not path.exists():
        return {}
    doc = out.read(path)
    if not doc or not (oos := out.parse(doc, OutOfScopeFile)):
        return {}
    topics: dict[str, list[str]] = {}
    for i, group in enumerate(oos.out_of_scope):
        if group.topic in topics:
            out.add(
                doc.rel, doc.line("out_of_scope", i, "topic"), f"duplicate topic {group.topic!r}"
            )
        topics.setdefault(group.topic, []).extend(group.examples)
    return topics


def _load_texts(out: _Collector, kdir: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    text_where: dict[str, str] = {}
    for path in _walk_yaml(kdir / "texts"):
        doc = out.read(path)
        if not doc:
            continue
        if not isinstance(doc.data, dict):
            out.add(doc.rel, 1, "expected a mapping of text keys to texts")
            continue
        for key, value in doc.data.items():
            line = doc.line(key)
            if not isinstance(value, str) or not value.strip():
                out.add(doc.rel, line, f"{key}: text must be a non-empty string")
                continue
            if key in texts:
                out.add(doc.rel, line, f"duplicate text key {key!r} (also in {text_where[key]})")
                continue
            if len(value) > TELEGRAM_TEXT_LIMIT:
                out.add(
                    doc.rel, line, f"{key}: longer than Telegram's {TELEGRAM_TEXT_LIMIT} characters"
                )
            try:
                list(string.Formatter().parse(value))
            except ValueError as exc:
                out.add(doc.rel, line, f"{key}: broken {{placeholder}}: {exc}")
            texts[str(key)] = value.strip()
            text_where[str(key)] = doc.rel

    return texts


def _load_intents(out: _Collector, idir: Path) -> list[Intent]:
    intents: list[Intent] = []
    seen_intents: dict[str, str] = {}
    for path in _walk_yaml(idir):
        doc = out.read(path)
        if not doc:
            continue
        intent = out.parse(doc, Intent)
        if not intent:
            continue
        if intent.id in seen_intents:
            out.add(
                doc.rel,
                doc.line("id"),
                f"duplicate intent id {intent.id!r} (also in {seen_intents[intent.id]})",
            )
            continue
        if intent.action == "reply" and not intent.reply:
            out.add(doc.rel, doc.line("action"), "action 'reply' needs a reply text")
        if intent.reply and len(intent.reply) > TELEGRAM_TEXT_LIMIT:
            out.add(
                doc.rel, doc.line("reply"), f"reply longer than {TELEGRAM_TEXT_LIMIT} characters"
            )
        seen_intents[intent.id] = doc.rel
        intents.append(intent)

    return intents


def _fingerprint(root: Path, kdir: Path, idir: Path) -> str:
    """A hash of every file, so caches built from this knowledge are found again."""
    digest = hashlib.sha256()
    for path in sorted([*kdir.rglob("*"), *idir.rglob("*")]):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_knowledge(knowledge_dir: Path, intents_dir: Path) -> Knowledge:
    """Load and cross-check all YAML; raise KnowledgeError listing every problem."""
    root = knowledge_dir.resolve().parent
    out = _Collector(root)
    kdir = knowledge_dir.resolve()
    idir = intents_dir.resolve()
    guides, guide_texts = _load_guides(out, kdir)
    entries, entry_guide, entry_kind = _load_entries(out, kdir, guides, guide_texts)
    red_flags = _load_red_flags(out, kdir, guides, guide_texts)
    synonyms = _load_synonyms(out, kdir)
    traffic_light = _load_traffic_light(out, kdir, guides)
    lemmas = _load_lemmas(out, kdir)
    vocab = _load_vocabulary(out, kdir)
    out_of_scope = _load_out_of_scope(out, kdir)
    texts = _load_texts(out, kdir)
    intents = _load_intents(out, idir)
    if out.problems or traffic_light is None:
        if not out.problems:
            out.add("knowledge/traffic_light.yaml", 1, "traffic light could not be loaded")
        raise KnowledgeError(out.problems)
    return Knowledge(
        guides=guides,
        entries=entries,
        entry_guide=entry_guide,
        entry_kind=entry_kind,
        guide_texts=guide_texts,
        red_flags=red_flags,
        synonyms=synonyms,
        traffic_light=traffic_light,
        texts=texts,
        intents=intents,
        lemmas=lemmas,
        vocab=vocab,
        out_of_scope=out_of_scope,
        fingerprint=_fingerprint(root, kdir, idir),
    )


def load_vocabulary(knowledge_dir: Path) -> Vocabulary:
    """Only the word lists of knowledge/lang/ (for tools and tests that need no more)."""
    kdir = knowledge_dir.resolve()
    out = _Collector(kdir.parent)
    vocab = _load_vocabulary(out, kdir)
    if out.problems:
        raise KnowledgeError(out.problems)
    return vocab


def validate(knowledge_dir: Path, intents_dir: Path) -> list[Problem]:
    """All problems in the YAML (an empty list means it is fine)."""
    try:
        load_knowledge(knowledge_dir, intents_dir)
    except KnowledgeError as exc:
        return exc.problems
    return []
