"""The ranker's training set, made of nothing but the knowledge: every entry's examples, title
and keywords, every intent's examples, and the out-of-scope examples (knowledge/out_of_scope.yaml).

Parallel entries (one `topic` in several guides) share a class: they answer the same question,
and which guide's wording the user gets is the guide context's decision, not the ranker's.
Near-duplicate phrasings of one class form a group, kept in one fold when cross-validating, so
a held-out example is never scored against its own twin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from bot.fold import fold
from bot.knowledge import Knowledge

OOS = "oos"
# Phrasings this alike (rapidfuzz token_sort_ratio of their folded text) are one example
# written twice, not two ways of asking: what counts as a twin, not a decision weight.
TWIN_RATIO = 90.0


def entry_class(kb: Knowledge, entry_id: str) -> str:
    topic = kb.entries[entry_id].topic
    return f"t:{topic}" if topic else f"e:{entry_id}"


INTENT = "i:"


def intent_class(intent_id: str) -> str:
    return INTENT + intent_id


def intent_of(label: str) -> str | None:
    """The intent a ranker class stands for, or None for an answer or out of scope."""
    return label.removeprefix(INTENT) if label.startswith(INTENT) else None


@dataclass(frozen=True)
class Phrasing:
    text: str
    label: str  # the ranker class
    owner: str  # entry id, intent id or out-of-scope topic
    guide: str | None  # the owner's guide (entries only)
    held_out: bool  # an example of how people ask (scored in CV); titles and keywords are not


def phrasings(kb: Knowledge) -> list[Phrasing]:
    out: list[Phrasing] = []
    for eid, e in kb.entries.items():
        label, guide = entry_class(kb, eid), kb.entry_guide[eid]
        out += [Phrasing(t, label, eid, guide, True) for t in e.examples]
        out += [Phrasing(t, label, eid, guide, False) for t in (e.title, *e.keywords)]
    for intent in kb.intents:
        out += [
            Phrasing(t, intent_class(intent.id), intent.id, None, True) for t in intent.examples
        ]
    for topic, examples in kb.out_of_scope.items():
        out += [Phrasing(t, OOS, topic, None, True) for t in examples]
    return out


def _key(text: str) -> str:
    return " ".join(fold(w) for w in text.lower().split())


def twin_groups(items: list[Phrasing]) -> list[int]:
    """A group number per phrasing: same class and near-identical wording share one."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_label: dict[str, list[int]] = {}
    for i, p in enumerate(items):
        by_label.setdefault(p.label, []).append(i)
    keys = [_key(p.text) for p in items]
    for members in by_label.values():
        # Every pair of the class at once (rapidfuzz's C loop; the same scorer as one by one).
        ratios = process.cdist(
            [keys[i] for i in members],
            [keys[i] for i in members],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=TWIN_RATIO,
        )
        for a, b in zip(*np.nonzero(np.triu(ratios, 1) > 0), strict=True):
            parent[find(members[a])] = find(members[b])
    return [find(i) for i in range(len(items))]


def folds(items: list[Phrasing], k: int) -> list[int]:
    """A fold number (0..k-1) per phrasing, twins together. Each group's fold comes from a
    hash of its own first phrasing, so an edit moves only the groups it touches: numbering
    the groups in hash order instead reshuffled every fold whenever one example was added,
    and cross-validated figures and fitted thresholds jumped with it."""
    groups = twin_groups(items)
    first_text: dict[int, str] = {}
    for g, p in zip(groups, items, strict=True):
        first_text.setdefault(g, p.label + "\n" + p.text)
    fold_of = {g: int(hashlib.sha1(t.encode()).hexdigest(), 16) % k for g, t in first_text.items()}
    return [fold_of[g] for g in groups]


def split(items: list[Phrasing], k: int) -> Iterator[tuple[list[int], list[int]]]:
    """(train, test) index lists per fold; only examples are tested."""
    assigned = folds(items, k)
    for f in range(k):
        train = [i for i, a in enumerate(assigned) if a != f]
        test = [i for i, a in enumerate(assigned) if a == f and items[i].held_out]
        yield train, test
