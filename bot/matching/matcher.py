"""The matcher: red flags first, then the learned ranker's candidates, weighed by the fusion
model into one decision. Built once per Knowledge (a reload builds a new one).

Everything learned is cached under the settings' cache folder, keyed by the knowledge's
fingerprint: a warm start loads numpy arrays and never imports scikit-learn; the first start
after a YAML change trains the ranker, cross-validates it and fits the fusion model, on both
cores (bot/fork.py), and answers while a forked child writes the cache.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from bot.bulk import collector_paused
from bot.fork import can_fork, in_background, one_thread_each
from bot.knowledge import Knowledge
from bot.lemmas import PIPELINE_VERSION
from bot.matching.candidates import Classes, allowed_guides, options
from bot.matching.cv import HeldOut, cross_validate, features_of
from bot.matching.dataset import phrasings
from bot.matching.decision import Decision, decide
from bot.matching.evidence import Evidence
from bot.matching.features import Vectorizer
from bot.matching.fusion import Fusion
from bot.matching.model import Rankers, rows_matrix
from bot.matching.red_flags import RedFlags
from bot.matching.vectors import message_vector
from bot.textproc import Analysis, TextProcessor, build_processor, save_analyses

log = logging.getLogger(__name__)

MODEL_VERSION = "4"  # 4: held-out decisions may quote a related second entry ("also")
Summary = dict[str, str | None]
# The cross-validated decisions: in memory, in the cache file, or still to be decided.
HeldOutDecisions = list[Summary] | Path | Callable[[], list[Summary]]
FOLDS = 3  # the cross-validation the fusion model is fitted on (eval --cv K may use more)
MAX_CHARS = 1500  # the question is rarely after 1,500 characters
CACHE_SIZE = 4096


def clip(text: str) -> str:
    return text[:MAX_CHARS] if isinstance(text, str) else ""


class Matcher:
    def __init__(
        self,
        kb: Knowledge,
        proc: TextProcessor,
        rankers: Rankers,
        fusion: Fusion,
        held_out: HeldOutDecisions | None = None,
        evidence_state: dict[str, Any] | None = None,
    ) -> None:
        """`held_out`: the cross-validated decisions, or the cache file that holds them (read
        only when asked for: validate and the tests need them, answering does not)."""
        self.kb = kb
        self.proc = proc
        self.rankers = rankers
        self.fusion = fusion
        self.evidence = Evidence(kb, proc, phrasings(kb), evidence_state)
        self.classes = {id(r): Classes(kb, r) for r in rankers.by_scope.values()}
        self.flags = RedFlags(kb, proc)
        self._held_out: HeldOutDecisions = held_out or []
        self._cache: dict[tuple[str, str | None, date], Decision] = {}

    @classmethod
    def build(cls, kb: Knowledge, cache_dir: Path | None = None) -> Matcher:
        with collector_paused():
            return cls._build(kb, cache_dir)

    @classmethod
    def _build(cls, kb: Knowledge, cache_dir: Path | None) -> Matcher:
        folder = _folder(kb, cache_dir)
        warm = folder is not None and (folder / "heldout.json").exists()
        # A cold start imports scikit-learn while a child builds the lemma table.
        proc = build_processor(kb, cache_dir, None if warm else _training_imports)
        matcher: Matcher | None = None
        if folder is not None and warm:
            try:
                rankers = Rankers.load(folder)
                fusion = Fusion.from_json((folder / "fusion.json").read_text(encoding="utf-8"))
                state = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
                matcher = cls(kb, proc, rankers, fusion, folder / "heldout.json", state)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("matching cache unreadable, rebuilding: %s", exc)
        if matcher is None:
            log.info("training the matcher for this knowledge (once per knowledge change)")
            trained = matcher = cls.train(kb, proc)

            def save() -> None:
                if folder is not None:
                    _save(trained, folder)
                save_analyses(proc)

            # Training is done: a forked child writes the cache (deciding the held-out
            # examples for it) while this process goes on to answer.
            in_background(save)
            proc.stop_recording()
            return matcher
        save_analyses(proc)
        return matcher

    @classmethod
    def train(cls, kb: Knowledge, proc: TextProcessor, folds: int = FOLDS) -> Matcher:
        with one_thread_each():
            return cls._train(kb, proc, folds)

    @classmethod
    def _train(cls, kb: Knowledge, proc: TextProcessor, folds: int) -> Matcher:
        items = phrasings(kb)
        feats = features_of(proc, items)
        vectorizer = Vectorizer.fit(feats)
        vectors = [vectorizer.vector(f) for f in feats]
        x = rows_matrix(vectors, len(vectorizer.columns))
        labels = [p.label for p in items]
        guides = [p.guide for p in items]
        threads = 1 if can_fork() else 2

        final: list[Rankers] = []  # trained here while a forked child cross-validates

        def train_final() -> None:
            final.append(Rankers.train(vectorizer, x, labels, guides, sorted(kb.guides), threads))

        held = cross_validate(kb, proc, items, feats, folds, vectors, vectorizer, train_final)
        rankers = final[0]
        fusion = Fusion.fit([h.rows for h in held])
        matcher = cls(kb, proc, rankers, fusion)
        # Decided when first asked for (validate, the tests, the cache): answering needs none.
        matcher._held_out = functools.partial(_summaries, kb, fusion, held)
        return matcher

    @property
    def held_out(self) -> list[Summary]:
        if isinstance(self._held_out, Path):
            loaded: list[Summary] = json.loads(self._held_out.read_text(encoding="utf-8"))
            self._held_out = loaded
        elif callable(self._held_out):
            self._held_out = self._held_out()
        return self._held_out

    @held_out.setter
    def held_out(self, value: list[Summary]) -> None:
        self._held_out = value

    # ------------------------------------------------------------------ deciding

    def red_flags(self, text: str, today: date | None = None) -> tuple[str, ...]:
        """`today` (the user's date) dates spans such as "siden februar"; default: the clock."""
        return self.flags.find(self.proc.analyse(clip(text)), today)

    def decide(self, text: str, guide: str | None = None, today: date | None = None) -> Decision:
        """The decision for one message (cached as long as this Matcher lives)."""
        key = (clip(text), guide, today or self.flags.clock())
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            hit = self._cache[key] = self._decide(key[0], guide, key[2])
        return hit

    def _decide(self, text: str, guide: str | None, today: date) -> Decision:
        a = self.proc.analyse(text)
        flags = self.flags.find(a, today)
        m = self.evidence.message(a)
        if not m.terms and not a.all_terms:
            return decide(self.kb, self.fusion, [], flags)
        ranker = self.rankers.scope(allowed_guides(self.kb, m, guide))
        vec = message_vector(self.rankers.vectorizer, self.proc, text, a)
        opts = options(self.classes[id(ranker)], self.evidence, ranker.scores(vec), m, guide)
        decision = decide(self.kb, self.fusion, opts, flags)
        if decision.kind == "intent" and (rest := _after_first_clause(a)):
            # Small talk before a question ("tak, men hvor længe varer det?"): the question.
            answer = self._decide(rest, guide, today)
            if answer.kind in {"answer", "red_flag", "clarify"}:
                return answer
        return decision


def _training_imports() -> None:
    import sklearn.linear_model  # noqa: F401


def _after_first_clause(a: Analysis) -> str:
    first = a.tokens[0].clause if a.tokens else 0
    return " ".join(t.text for t in a.tokens if t.clause != first)


def _summaries(kb: Knowledge, fusion: Fusion, held: list[HeldOut]) -> list[Summary]:
    return [_summary(kb, fusion, h) for h in held]


def _summary(kb: Knowledge, fusion: Fusion, h: HeldOut) -> Summary:
    d = decide(kb, fusion, list(h.candidates))
    return {
        "text": h.item.text,
        "owner": h.item.owner,
        "label": h.item.label,
        "context": h.context,
        "kind": d.kind,
        "entry": d.entry_id,
        "also": d.also[0] if d.also else None,
        "intent": d.intent_id,
        "guide": d.guide,
    }


def _folder(kb: Knowledge, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    # The analyses the rankers are trained on change with the pipeline too.
    return cache_dir / f"matcher-{MODEL_VERSION}.{PIPELINE_VERSION}-{kb.matching_fingerprint}"


def _save(matcher: Matcher, folder: Path) -> None:
    """Written to a new folder and renamed into place, so a reader never sees half of it;
    the folders of older knowledge are removed (they are never read again)."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        matcher.rankers.save(tmp)
        (tmp / "fusion.json").write_text(matcher.fusion.to_json(), encoding="utf-8")
        state = json.dumps(matcher.evidence.state(), ensure_ascii=False)
        (tmp / "evidence.json").write_text(state, encoding="utf-8")
        held = json.dumps(matcher.held_out, ensure_ascii=False)
        (tmp / "heldout.json").write_text(held, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # another process got there first
        else:
            tmp.rename(folder)
        for old in folder.parent.glob("matcher-*"):
            if old != folder and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        log.warning("could not write the matching cache: %s", exc)
