"""Load and validate everything the bot knows and says from YAML.

Maintainers edit knowledge/ and intents/; this module turns those files into
typed objects and reports every mistake at once as `path:line: message`, so a
broken edit is caught by `python -m bot validate` (and by /reload) before it
reaches a runner. The file schemas are bot/schemas.py; line numbers and the
collecting of problems are bot/yamldoc.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot import vocabulary
from bot.fold import fold
from bot.schemas import (
    TELEGRAM_TEXT_LIMIT,
    Entry,
    Guide,
    GuideKnowledgeFile,
    GuidesFile,
    Intent,
    LemmasFile,
    OutOfScopeFile,
    RedFlag,
    RedFlagsFile,
    SynonymsFile,
    TrafficLight,
    Zone,
)
from bot.vocabulary import Vocabulary
from bot.yamldoc import Collector, KnowledgeError, Problem, walk_yaml


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

    @functools.cached_property
    def matching_fingerprint(self) -> str:
        """A hash of what matching reads (not the bot's texts or the traffic light), so a
        cache of the trained matcher survives an edit of a greeting."""
        reads = {
            "guides": {gid: g.model_dump() for gid, g in self.guides.items()},
            "entries": {eid: e.model_dump() for eid, e in self.entries.items()},
            "entry_guide": self.entry_guide,
            "guide_texts": self.guide_texts,
            "red_flags": [rf.model_dump() for rf in self.red_flags],
            "synonyms": self.synonyms,
            "intents": [(i.id, i.action, i.examples) for i in self.intents],
            "lemmas": self.lemmas,
            "vocab": [dict(self.vocab.lists), {k: dict(v) for k, v in self.vocab.mappings.items()}],
            "out_of_scope": self.out_of_scope,
        }
        raw = json.dumps(reads, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def text(self, key: str, **values: object) -> str:
        """A bot text by key, with `{placeholders}` filled in."""
        try:
            template = self.texts[key]
        except KeyError:
            raise KeyError(f"missing bot text {key!r} in knowledge/texts/") from None
        return template.format(**values) if values else template

    def entries_of(self, guide: str) -> list[Entry]:
        return [e for eid, e in self.entries.items() if self.entry_guide[eid] == guide]


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


def _load_guides(out: Collector, kdir: Path) -> tuple[dict[str, Guide], dict[str, str]]:
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
    out: Collector, kdir: Path, guides: dict[str, Guide], guide_texts: dict[str, str]
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
    for path in walk_yaml(kdir):
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
    out: Collector,
    kdir: Path,
    guides: dict[str, Guide],
    guide_texts: dict[str, str],
    clause_words: frozenset[str] = frozenset(),
) -> list[RedFlag]:
    """`clause_words` split a sentence in two and are dropped from a phrase ("men gik ned
    igen" would match as "gik ned igen", "men" alone never): such a phrase is reported."""
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
            phrases: list[tuple[tuple[object, ...], str]] = [
                (("all_of", g, k), t) for g, grp in enumerate(rf.all_of) for k, t in enumerate(grp)
            ]
            phrases += [(("none_of", k), t) for k, t in enumerate(rf.none_of)]
            for loc, phrase in phrases:
                split = [w for w in phrase.split() if fold(w) in clause_words]
                if split:
                    out.add(
                        rf_doc.rel,
                        rf_doc.line("red_flags", i, *loc),
                        f"{rf.id}: phrase {phrase!r} holds {split[0]!r}, which splits a sentence"
                        " in two: the phrase cannot match as written",
                    )
        red_flags = list(rff.red_flags)

    return red_flags


def _load_synonyms(out: Collector, kdir: Path) -> dict[str, list[str]]:
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
    out: Collector, kdir: Path, guides: dict[str, Guide]
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


def _load_lemmas(out: Collector, kdir: Path) -> dict[str, str]:
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


def _load_out_of_scope(out: Collector, kdir: Path) -> dict[str, list[str]]:
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


def _load_texts(out: Collector, kdir: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    text_where: dict[str, str] = {}
    for path in walk_yaml(kdir / "texts"):
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


def _load_intents(out: Collector, idir: Path) -> list[Intent]:
    intents: list[Intent] = []
    seen_intents: dict[str, str] = {}
    for path in walk_yaml(idir):
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
    out = Collector(root)
    kdir = knowledge_dir.resolve()
    idir = intents_dir.resolve()
    guides, guide_texts = _load_guides(out, kdir)
    entries, entry_guide, entry_kind = _load_entries(out, kdir, guides, guide_texts)
    vocab = vocabulary.load(out, kdir)
    red_flags = _load_red_flags(out, kdir, guides, guide_texts, vocab.folded("clause_words"))
    synonyms = _load_synonyms(out, kdir)
    traffic_light = _load_traffic_light(out, kdir, guides)
    lemmas = _load_lemmas(out, kdir)
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
    out = Collector(kdir.parent)
    vocab = vocabulary.load(out, kdir)
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


__all__ = [
    "TELEGRAM_TEXT_LIMIT",
    "Entry",
    "Guide",
    "Intent",
    "Knowledge",
    "KnowledgeError",
    "Problem",
    "RedFlag",
    "TrafficLight",
    "Zone",
    "load_knowledge",
    "load_vocabulary",
    "validate",
]
