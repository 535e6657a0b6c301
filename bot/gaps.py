"""`python -m bot gaps`: the questions the bot could not answer well, grouped, so maintainers
see what to add to knowledge/.

A gap is a fallback or an answer marked "hjalp ikke". Paraphrases are grouped by the ranker's
own features (character n-grams within words plus lemma n-grams), weighted by how rare each
feature is in the knowledge: what the knowledge says everywhere ("ondt i hasen") tells two
questions apart least, a word it never wrote ("svømme", "padel") most. Answers that got "hjalp
ikke" are also listed by the bot's confidence, surest first: a confident wrong answer is the
costliest mistake. No user id is selected, so none can be printed.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from bot.fold import fold
from bot.knowledge import Knowledge
from bot.maintenance import (
    Context,
    has_tables,
    pct,
    positive,
    quote,
    run_report,
    share,
)
from bot.matching.features import CHAR_NGRAMS, raw_features
from bot.storage import Database, Question, utcnow
from bot.textproc import TextProcessor

DEFAULT_GAP_DAYS = 30
DEFAULT_GAP_LIMIT = 20
# Two questions ask the same thing when the cosine of their weighted features reaches this:
# how coarse the groups are for a maintainer to read, not a decision the bot acts on.
PARAPHRASE_COSINE = 0.4
MAX_OTHER_PHRASINGS = 3


@dataclass(frozen=True)
class GapQuestion:
    """One logged question that got a fallback or a "hjalp ikke"."""

    text: str
    kind: str
    entry_id: str | None
    helpful: bool | None
    score: float = 0.0


@dataclass
class Group:
    """Questions that ask the same thing in different words."""

    questions: list[GapQuestion] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def not_helpful(self) -> int:
        return sum(1 for q in self.questions if q.helpful is False)

    @property
    def fallbacks(self) -> int:
        return sum(1 for q in self.questions if q.kind == "fallback")

    def phrasings(self) -> list[str]:
        """Distinct phrasings, most frequent first (case and spacing ignored)."""
        counts: Counter[str] = Counter()
        shown: dict[str, str] = {}
        for q in self.questions:
            folded = " ".join(q.text.split()).casefold()
            counts[folded] += 1
            shown.setdefault(folded, " ".join(q.text.split()))
        order = sorted(counts, key=lambda k: (-counts[k], len(k), k))
        return [shown[k] for k in order]

    def entries(self) -> list[tuple[str | None, int]]:
        """The entries the bot chose (None: no entry, a fallback), most frequent first."""
        counts = Counter(q.entry_id for q in self.questions)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is not None, kv[0] or ""))


class Paraphrases:
    """Feature vectors for grouping, weighted by rarity in the knowledge's phrasings."""

    def __init__(self, proc: TextProcessor, knowledge_phrasings: Sequence[str]) -> None:
        self.proc = proc
        self.known: set[str] = set()
        df: Counter[str] = Counter()
        for text in knowledge_phrasings:
            self.known.update(self.proc.analyse(text).terms)
        for text in knowledge_phrasings:
            df.update(self._features(text).keys())
        n = len(knowledge_phrasings)
        self.idf = {f: math.log((1 + n) / (1 + c)) + 1 for f, c in df.items()}
        self.unseen = math.log(1 + n) + 1

    def _features(self, text: str) -> Counter[str]:
        """Lemma n-grams, and the character n-grams of words the knowledge never wrote (so
        "padel" and "paddel" meet, while shared everyday words are not counted twice)."""
        a = self.proc.analyse(text)
        _chars, words = raw_features(text, a)
        out = Counter({"w" + k: v for k, v in words.items()})
        for tok in a.tokens:
            if tok.stop or tok.number is not None or tok.term in self.known:
                continue
            for gram in _grams(tok.text):
                out["c" + gram] += 1
        return out

    def vector(self, text: str) -> dict[str, float]:
        weights = {
            f: (1 + math.log(c)) * self.idf.get(f, self.unseen)
            for f, c in self._features(text).items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {f: w / norm for f, w in weights.items()} if norm else {}


def _grams(word: str) -> list[str]:
    padded = f" {fold(word)} "
    return [padded[i : i + n] for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)]


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(f, 0.0) for f, w in a.items())


def group_questions(
    questions: Sequence[GapQuestion],
    paraphrases: Paraphrases,
    threshold: float = PARAPHRASE_COSINE,
) -> list[Group]:
    """Greedy: the most frequent phrasings seed groups; each other phrasing joins the group
    whose seed it is most alike, if alike enough. Groups come largest first."""
    by_text: dict[str, list[GapQuestion]] = {}
    for q in questions:
        by_text.setdefault(" ".join(q.text.split()).casefold(), []).append(q)
    first_seen = {t: i for i, t in enumerate(by_text)}
    ordered = sorted(by_text, key=lambda t: (-len(by_text[t]), first_seen[t]))
    groups: list[Group] = []
    seeds: list[dict[str, float]] = []
    for text in ordered:
        vec = paraphrases.vector(text)
        scores = [cosine(vec, seed) for seed in seeds] if vec else []
        best = max(range(len(scores)), key=scores.__getitem__, default=-1)
        if best < 0 or scores[best] < threshold:
            groups.append(Group())
            seeds.append(vec)
            best = len(groups) - 1
        groups[best].questions.extend(by_text[text])
    first_group = {id(g): i for i, g in enumerate(groups)}
    groups.sort(key=lambda g: (-g.count, -g.not_helpful, first_group[id(g)]))
    return groups


def gap_questions(db: Database | None, since: datetime) -> list[GapQuestion]:
    """Fallbacks and "hjalp ikke" answers since `since`, oldest first (user ids not read)."""
    if db is None or not has_tables(db):
        return []
    statement = (
        select(Question.text, Question.kind, Question.entry_id, Question.helpful, Question.score)
        .where(
            Question.created_at >= since,
            or_(Question.kind == "fallback", Question.helpful.is_(False)),
        )
        .order_by(Question.created_at, Question.id)
    )
    with db.session() as s:
        return [
            GapQuestion(t, k, e, h, float(sc or 0.0)) for t, k, e, h, sc in s.execute(statement)
        ]


def _entry(kb: Knowledge, eid: str | None, count: int) -> dict[str, Any]:
    title = kb.entries[eid].title if eid in kb.entries else None
    return {"id": eid, "title": title, "count": count}


def gap_report(
    questions: Sequence[GapQuestion],
    kb: Knowledge,
    paraphrases: Paraphrases | None,
    *,
    days: int,
    since: datetime,
    limit: int = DEFAULT_GAP_LIMIT,
) -> dict[str, Any]:
    """The `gaps --json` object: the largest groups, and the surest answers that did not help."""
    groups = group_questions(questions, paraphrases) if paraphrases and questions else []
    shown = []
    for group in groups[:limit]:
        phrasings = group.phrasings()
        shown.append(
            {
                "count": group.count,
                "fallbacks": group.fallbacks,
                "not_helpful": group.not_helpful,
                "not_helpful_share": share(group.not_helpful, group.count),
                "question": phrasings[0],
                "other_phrasings": phrasings[1 : 1 + MAX_OTHER_PHRASINGS],
                "entries": [_entry(kb, eid, n) for eid, n in group.entries()],
            }
        )
    unhelpful = sorted(
        (q for q in questions if q.helpful is False and q.entry_id is not None),
        key=lambda q: -q.score,
    )
    confident = [
        {"question": q.text, "score": round(q.score, 1), **_entry(kb, q.entry_id, 1)}
        for q in unhelpful[:limit]
    ]
    return {
        "days": days,
        "since": since.isoformat(),
        "questions": len(questions),
        "groups_total": len(groups),
        "groups": shown,
        "confident_not_helpful": confident,
    }


def render_gaps(report: dict[str, Any], kb: Knowledge) -> str:
    since = report["since"][:10]
    lines = [kb.text("maint_gaps_title", days=report["days"], since=since), ""]
    if not report["groups"]:
        lines.append(kb.text("maint_gaps_empty"))
        return "\n".join(lines)
    lines += [
        kb.text(
            "maint_gaps_summary",
            questions=report["questions"],
            groups=report["groups_total"],
            shown=len(report["groups"]),
        ),
        "",
    ]
    for rank, group in enumerate(report["groups"], start=1):
        lines.append(
            kb.text(
                "maint_gaps_group",
                rank=rank,
                count=group["count"],
                question=quote(group["question"]),
            )
        )
        if group["other_phrasings"]:
            others = ", ".join(f"”{quote(p, 80)}”" for p in group["other_phrasings"])
            lines.append("   " + kb.text("maint_gaps_others", phrasings=others))
        entries = [_render_entry(kb, e) for e in group["entries"]]
        lines.append("   " + kb.text("maint_gaps_entries", entries="; ".join(entries)))
        lines.append(
            "   "
            + kb.text(
                "maint_gaps_not_helpful",
                count=group["not_helpful"],
                total=group["count"],
                share=pct(group["not_helpful_share"], kb),
            )
        )
        lines.append("")
    if report["confident_not_helpful"]:
        lines.append(kb.text("maint_gaps_confident_title"))
        for q in report["confident_not_helpful"]:
            lines.append(
                "   "
                + kb.text(
                    "maint_gaps_confident",
                    score=f"{q['score']:.0f}",
                    question=quote(q["question"], 100),
                    entry=_render_entry(kb, q).removesuffix(" (1×)"),
                )
            )
        lines.append("")
    lines.append(kb.text("maint_gaps_hint"))
    return "\n".join(lines)


def _render_entry(kb: Knowledge, entry: dict[str, Any]) -> str:
    if entry["id"] is None:
        return kb.text("maint_gaps_no_entry", count=entry["count"])
    if entry["title"] is None:
        return kb.text("maint_gaps_entry_unknown", id=entry["id"], count=entry["count"])
    return kb.text("maint_gaps_entry", id=entry["id"], title=entry["title"], count=entry["count"])


def paraphrases_for(kb: Knowledge, proc: TextProcessor) -> Paraphrases:
    from bot.matching.dataset import OOS, phrasings

    return Paraphrases(proc, [p.text for p in phrasings(kb) if p.label != OOS])


def gaps_main(argv: list[str]) -> int:
    """`python -m bot gaps`: the questions the bot could not answer well, grouped."""
    parser = argparse.ArgumentParser(prog="python -m bot gaps", description=gaps_main.__doc__)
    parser.add_argument("--days", type=positive, default=DEFAULT_GAP_DAYS, help="look back N days")
    parser.add_argument("--limit", type=positive, default=DEFAULT_GAP_LIMIT, help="show N groups")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        since = utcnow() - timedelta(days=args.days)
        questions = gap_questions(ctx.db, since)
        paraphrases = None
        if questions:  # the Danish processor takes a moment to load: only when needed
            from bot.textproc import build_processor

            paraphrases = paraphrases_for(ctx.kb, build_processor(ctx.kb, ctx.settings.cache_dir))
        return gap_report(
            questions, ctx.kb, paraphrases, days=args.days, since=since, limit=args.limit
        )

    return run_report(argv, parser, build, render_gaps)
