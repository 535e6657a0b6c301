"""Candidates for a message: the ranker's best classes, resolved to the entries the guide
context allows, each with the feature row the fusion model scores.

The guide context is the message's own guide words first ("knæ" -> distal), then the user's
chosen guide, then nothing: parallel entries stay one candidate, and answering it means asking
which guide was meant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.knowledge import Knowledge
from bot.matching.dataset import OOS, entry_class, intent_of
from bot.matching.evidence import Evidence, Message
from bot.matching.features import raw_features
from bot.matching.model import Ranker
from bot.textproc import Analysis

TOP = 5  # candidates scored per message
FEATURES = (
    "score",
    "margin",
    "question_score",
    "question_behind_best",
    "out_of_scope",
    "behind_best",
    "cover",
    "best_phrasing",
    "answer_cover",
    "likeness",
    "question_cover",
    "question_best_phrasing",
    "unseen",
    "question_unseen",
    "foreign",
    "off_topic",
    "length",
    "intent",
    "intent_cover",
    "intent_best_phrasing",
    "user_guide",
    "named_guide",
    "restricted",
    "first",
    "phase",
)


@dataclass(frozen=True)
class Option:
    label: str
    entries: tuple[str, ...]  # the class's entries within the allowed guides
    intent_id: str | None
    features: np.ndarray

    @property
    def entry_id(self) -> str | None:
        """The one entry meant, or None for parallel entries with no guide context."""
        return self.entries[0] if len(self.entries) == 1 else None


class Classes:
    """Which entries and intents each ranker class stands for."""

    def __init__(self, kb: Knowledge, ranker: Ranker) -> None:
        self.kb = kb
        self.ranker = ranker
        self.labels = ranker.classes
        self.oos = self.labels.index(OOS) if OOS in self.labels else -1
        by_label: dict[str, list[str]] = {}
        for eid in kb.entries:
            by_label.setdefault(entry_class(kb, eid), []).append(eid)
        self.entries = by_label

    def resolve(
        self, label: str, guides: set[str], prefer: Sequence[set[str]] = ()
    ) -> tuple[tuple[str, ...], str | None]:
        """The class's entries in the allowed guides; of parallel entries, those of the first
        preferred guide set that picks exactly one (the message's own guide words, then the
        user's guide)."""
        if (intent := intent_of(label)) is not None:
            return (), intent
        found = tuple(e for e in self.entries.get(label, ()) if self.kb.entry_guide[e] in guides)
        if len(found) > 1:
            for wanted in prefer:
                picked = tuple(e for e in found if self.kb.entry_guide[e] in wanted)
                if len(picked) == 1:
                    return picked, None
        return found, None


def allowed_guides(kb: Knowledge, m: Message, user_guide: str | None) -> set[str]:
    """The user's guide and the guides the message names ("hip thrust" from a proximal user
    is still a proximal exercise: the content decides between them); with no user guide the
    named ones, else a weak hint, else all."""
    if user_guide in kb.guides:
        return {user_guide, *m.named}
    if m.named:
        return set(m.named)
    if len(m.hinted) == 1:
        return set(m.hinted)
    return set(kb.guides)


def options(
    classes: Classes,
    evidence: Evidence,
    scores: np.ndarray,
    m: Message,
    user_guide: str | None,
    memo: dict[tuple[str, str | None], tuple[float, ...]] | None = None,
) -> list[Option]:
    """The TOP candidates; `memo` keeps the evidence of one message across several calls."""
    kb = classes.kb
    memo = {} if memo is None else memo
    guides = allowed_guides(kb, m, user_guide)
    restricted = float(len(guides) < len(kb.guides))
    # Of parallel answers, the guide the message names wins, then the user's.
    prefer = [set(m.named), {user_guide} if user_guide else set()]
    order = np.argsort(-scores, kind="stable")
    picked: list[tuple[int, tuple[str, ...], str | None]] = []
    for n in order.tolist():
        if n == classes.oos:
            continue
        entries, intent = classes.resolve(classes.labels[n], guides, prefer)
        if entries or intent:
            picked.append((n, entries, intent))
            if len(picked) == TOP + 1:
                break
    best_all = float(scores.max()) if len(scores) else 0.0
    q_scores = _question_scores(classes, m)
    q_best = _best_answer(classes, q_scores) if q_scores is not None else 0.0
    oos = float(scores[classes.oos]) if classes.oos >= 0 else -1.0
    out: list[Option] = []
    for pos, (n, entries, intent) in enumerate(picked[:TOP]):
        s = float(scores[n])
        after = float(scores[picked[pos + 1][0]]) if pos + 1 < len(picked) else s - 1.0
        before = float(scores[picked[pos - 1][0]]) if pos else after
        label = classes.labels[n]
        entry = entries[0] if entries else None
        cand_guides = {kb.entry_guide[e] for e in entries}
        support = memo.get((label, entry))
        if support is None:
            support = memo[(label, entry)] = evidence.support(m, label, entry)
        if q_scores is None:
            q_s, q_behind = s, best_all - s
        else:
            q_s = float(q_scores[n])
            q_behind = q_best - q_s
        row = (
            s,
            s - (after if pos == 0 else before),
            q_s,
            q_behind,
            oos,
            best_all - s,
            *support,
            m.unseen,
            m.question_unseen,
            m.foreign,
            m.off_topic,
            math.log1p(m.size),
            float(intent is not None),
            # Small talk must be most of the message ("tak, men hvor længe varer det?" is not).
            support[0] if intent is not None else 0.0,
            support[1] if intent is not None else 0.0,
            float(user_guide in cand_guides),
            float(bool(cand_guides & (m.named or m.hinted))),
            restricted,
            float(pos == 0),
            _phase(kb, entries, m.phases),
        )
        out.append(Option(label, entries, intent, np.array(row, dtype=np.float64)))
    return out


def _question_scores(classes: Classes, m: Message) -> np.ndarray | None:
    """The ranker's scores of the clauses that ask alone (None when all of the message asks):
    how the question reads without its story."""
    if not m.question_tokens:
        return None
    toks = m.question_tokens
    text = " ".join(t.text for t in toks)
    ranker = classes.ranker
    scores: np.ndarray = ranker.scores(ranker.vectorizer.vector(raw_features(text, Analysis(toks))))
    return scores


def _best_answer(classes: Classes, scores: np.ndarray) -> float:
    """The best score of any class but out-of-scope."""
    if classes.oos < 0:
        return float(scores.max())
    return float(np.delete(scores, classes.oos).max())


def _phase(kb: Knowledge, entries: Sequence[str], named: frozenset[int]) -> float:
    """+1 when the message names the candidate's phase ("øvelser i fase 2"), -1 when it names
    another one, 0 when it names none or the candidate is no phase."""
    phases = {p for e in entries if (p := kb.entries[e].phase) is not None}
    if not named or not phases:
        return 0.0
    return 1.0 if phases & named else -1.0
