"""The maintainers' loop: `python -m bot gaps` and `python -m bot stats`.

`gaps` groups the questions the bot could not answer well (a fallback, or an answer
marked "hjalp ikke") so maintainers see what to add to knowledge/; `stats` sums up
use. Each report is first a plain dict (what `--json` prints), then rendered as text
with the Danish headings of knowledge/texts/maintenance.yaml. No user id is ever
selected, so none can be printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process
from sqlalchemy import func, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError

from bot.fold import fold as skeleton
from bot.knowledge import Knowledge, KnowledgeError, Zone, load_knowledge
from bot.settings import Settings, SettingsError, load_settings
from bot.storage import Checkin, Database, Question, User, utcnow
from bot.textproc import TextProcessor, clean

DEFAULT_GAP_DAYS = 30
DEFAULT_GAP_LIMIT = 20
DEFAULT_STATS_DAYS = 14
# Two questions ask the same thing when their shared terms carry at least this share
# (0-100) of both questions' term weight (a weighted Dice coefficient).
SIMILARITY_THRESHOLD = 50.0
# Terms this alike (rapidfuzz ratio, 0-100) count as one word typed two ways.
TERM_MATCH = 85.0
MIN_FUZZY_TERM = 5  # shorter terms must match exactly (øl is not ål)
# A new phrasing is compared with this many of a group's most frequent phrasings.
COMPARE_MEMBERS = 5
MAX_OTHER_PHRASINGS = 3
QUESTION_KINDS = ("answer", "clarify", "fallback", "red_flag", "intent")
ZONE_IDS = ("green", "yellow", "red")
SHOW_EMPTY_DAYS = 31  # longer periods list only the days with check-ins

Terms = Callable[[str], tuple[str, ...]]
Weight = Callable[[str], float]


# --------------------------------------------------------------------------- normalising


@lru_cache(maxsize=1)
def _stop() -> frozenset[str]:
    """spaCy's Danish stop words, for grouping questions when no knowledge is at hand."""
    from spacy.lang.da.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | frozenset(skeleton(w) for w in STOP_WORDS)


def simple_terms(text: str) -> tuple[str, ...]:
    """Content words without the knowledge: lowercased, æ/ø/å folded, stop words dropped."""
    stop = _stop()
    words = (w.strip(".,!?:;'/+%") for w in clean(text).replace("-", " ").split())
    return tuple(skeleton(w) for w in words if w and w not in stop and not w.isdigit())


def _even(_term: str) -> float:
    return 1.0


@dataclass(frozen=True)
class Normaliser:
    """Turns a question into terms, and weighs each term by how much it tells apart."""

    terms: Terms = simple_terms
    weight: Weight = _even


def processor_normaliser(proc: TextProcessor) -> Normaliser:
    """The project's Danish processing (lemmas, typos, synonyms, compounds) for grouping.

    Words the knowledge uses often (ondt, hase, løbe) say little about what is missing,
    while words it lacks (svømme, padel) are the gap: terms weigh 1 / (1 + ln(1 + n)),
    n being how often the knowledge uses the term.
    """
    freq: Counter[str] = Counter()
    for form, n in proc.table.freq.items():
        freq[skeleton(proc.table.lemmas.get(form, form))] += n

    def terms(text: str) -> tuple[str, ...]:
        tokens = proc.analyse(text).tokens
        found = tuple(t.term for t in tokens if not t.stop and t.number is None and t.term)
        return found or simple_terms(text)

    def weight(term: str) -> float:
        return 1.0 / (1.0 + math.log1p(freq.get(term, 0)))

    return Normaliser(terms, weight)


@lru_cache(maxsize=1 << 18)
def _same_term(a: str, b: str) -> bool:
    if a == b:
        return True
    return min(len(a), len(b)) >= MIN_FUZZY_TERM and fuzz.ratio(a, b) >= TERM_MATCH


def similarity(a: Sequence[str], b: Sequence[str], weight: Weight = _even) -> float:
    """How much of two questions' term weight they share (0-100), typos forgiven.

    Unlike rapidfuzz's token_set_ratio this is not 100 when one question's terms are a
    subset of the other's, so a one-word question cannot swallow every longer one.
    """
    total = sum(weight(t) for t in a) + sum(weight(t) for t in b)
    if not total:
        return 0.0
    in_a: set[int] = set()
    in_b: set[int] = set()
    for i, t in enumerate(a):
        for j, u in enumerate(b):
            if _same_term(t, u):
                in_a.add(i)
                in_b.add(j)
    shared = sum(weight(a[i]) for i in in_a) + sum(weight(b[j]) for j in in_b)
    return 100.0 * shared / total


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class GapQuestion:
    """One logged question that got a fallback or a "hjalp ikke"."""

    text: str
    kind: str
    entry_id: str | None
    helpful: bool | None


@dataclass
class Group:
    """Questions that ask the same thing in different words."""

    keys: list[tuple[str, ...]] = field(default_factory=list)
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


def group_questions(
    questions: Sequence[GapQuestion],
    normaliser: Normaliser | None = None,
    threshold: float = SIMILARITY_THRESHOLD,
) -> list[Group]:
    """Greedy clustering: the most frequent phrasings seed groups, the rest join the best match.

    Questions with the same terms are one key first; keys are then taken most frequent
    first, and each joins the group whose phrasings it resembles most if that reaches
    `threshold`, else starts a new group. Groups come largest first.
    """
    norm = normaliser or Normaliser()
    by_key: dict[tuple[str, ...], list[GapQuestion]] = {}
    for q in questions:
        key = tuple(sorted(set(norm.terms(q.text))))
        if not key:  # emoji or punctuation only: such questions group only with their like
            key = ("\0" + " ".join(q.text.split()),)
        by_key.setdefault(key, []).append(q)
    first_seen = {key: i for i, key in enumerate(by_key)}
    ordered = sorted(by_key, key=lambda k: (-len(by_key[k]), first_seen[k]))

    groups: list[Group] = []
    # Only groups sharing a term (or a near-spelling of one) can reach the threshold,
    # so an index of the compared keys' terms keeps this fast with thousands of questions.
    by_term: dict[str, set[int]] = {}
    long_terms: list[str] = []
    for key in ordered:
        candidates: set[int] = set()
        for term in key:
            candidates |= by_term.get(term, set())
            if len(term) >= MIN_FUZZY_TERM and long_terms:
                for other, _score, _i in process.extract(
                    term, long_terms, scorer=fuzz.ratio, score_cutoff=TERM_MATCH, limit=None
                ):
                    candidates |= by_term[other]
        best = -1
        best_score = -1.0
        for index in sorted(candidates):
            compared = groups[index].keys[:COMPARE_MEMBERS]
            score = max(similarity(key, other, norm.weight) for other in compared)
            if score > best_score:
                best, best_score = index, score
        if best < 0 or best_score < threshold:
            best = len(groups)
            groups.append(Group())
        group = groups[best]
        if len(group.keys) < COMPARE_MEMBERS:
            for term in key:
                if term not in by_term and len(term) >= MIN_FUZZY_TERM:
                    long_terms.append(term)
                by_term.setdefault(term, set()).add(best)
        group.keys.append(key)
        group.questions.extend(by_key[key])
    first_group = {id(g): i for i, g in enumerate(groups)}
    groups.sort(key=lambda g: (-g.count, -g.not_helpful, first_group[id(g)]))
    return groups


# --------------------------------------------------------------------------- reports


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _has_tables(db: Database) -> bool:
    names = set(inspect(db.engine).get_table_names())
    return {User.__tablename__, Checkin.__tablename__, Question.__tablename__} <= names


def gap_questions(db: Database | None, since: datetime) -> list[GapQuestion]:
    """Fallbacks and "hjalp ikke" answers since `since`, oldest first (user ids not read)."""
    if db is None or not _has_tables(db):
        return []
    statement = (
        select(Question.text, Question.kind, Question.entry_id, Question.helpful)
        .where(
            Question.created_at >= since,
            or_(Question.kind == "fallback", Question.helpful.is_(False)),
        )
        .order_by(Question.created_at, Question.id)
    )
    with db.session() as s:
        return [GapQuestion(t, k, e, h) for t, k, e, h in s.execute(statement)]


def gap_report(
    questions: Sequence[GapQuestion],
    kb: Knowledge,
    normaliser: Normaliser | None = None,
    *,
    days: int,
    since: datetime,
    limit: int = DEFAULT_GAP_LIMIT,
    threshold: float = SIMILARITY_THRESHOLD,
) -> dict[str, Any]:
    """The `gaps --json` object: the largest groups of badly answered questions."""
    groups = group_questions(questions, normaliser, threshold)
    shown = []
    for group in groups[:limit]:
        phrasings = group.phrasings()
        shown.append(
            {
                "count": group.count,
                "fallbacks": group.fallbacks,
                "not_helpful": group.not_helpful,
                "not_helpful_share": _share(group.not_helpful, group.count),
                "question": phrasings[0],
                "other_phrasings": phrasings[1 : 1 + MAX_OTHER_PHRASINGS],
                "entries": [
                    {
                        "id": eid,
                        "title": kb.entries[eid].title if eid in kb.entries else None,
                        "count": n,
                    }
                    for eid, n in group.entries()
                ],
            }
        )
    return {
        "days": days,
        "since": since.isoformat(),
        "questions": len(questions),
        "groups_total": len(groups),
        "groups": shown,
    }


def _pct(share: float | None, kb: Knowledge) -> str:
    if share is None:
        return kb.text("maint_share_none")
    return f"{share * 100:.0f} %"


def _quote(text: str, width: int = 160) -> str:
    """One line, clipped: a maintainer scans the list, the JSON has the full text."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


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
                question=_quote(group["question"]),
            )
        )
        if group["other_phrasings"]:
            others = ", ".join(f"”{_quote(p, 80)}”" for p in group["other_phrasings"])
            lines.append("   " + kb.text("maint_gaps_others", phrasings=others))
        entries = []
        for entry in group["entries"]:
            if entry["id"] is None:
                entries.append(kb.text("maint_gaps_no_entry", count=entry["count"]))
            elif entry["title"] is None:
                entries.append(
                    kb.text("maint_gaps_entry_unknown", id=entry["id"], count=entry["count"])
                )
            else:
                entries.append(
                    kb.text(
                        "maint_gaps_entry",
                        id=entry["id"],
                        title=entry["title"],
                        count=entry["count"],
                    )
                )
        lines.append("   " + kb.text("maint_gaps_entries", entries="; ".join(entries)))
        lines.append(
            "   "
            + kb.text(
                "maint_gaps_not_helpful",
                count=group["not_helpful"],
                total=group["count"],
                share=_pct(group["not_helpful_share"], kb),
            )
        )
        lines.append("")
    lines.append(kb.text("maint_gaps_hint"))
    return "\n".join(lines)


def stats_report(
    db: Database | None,
    days: int = DEFAULT_STATS_DAYS,
    now: datetime | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """The `stats --json` object: users, check-ins per day, zones, question kinds, feedback.

    Check-in days are the users' own calendar days in the last `days` days up to today
    in `tz`; questions and activity count from `now - days`.
    """
    now = now or utcnow()
    since = now - timedelta(days=days)
    last = now.astimezone(ZoneInfo(tz)).date()
    first = last - timedelta(days=days - 1)
    day_zone: Counter[tuple[date, str]] = Counter()
    kinds: Counter[str] = Counter()
    feedback: Counter[bool] = Counter()
    users = {"total": 0, "consenting": 0, "reachable": 0, "active": 0}
    if db is not None and _has_tables(db):
        with db.session() as s:
            users["total"] = s.scalar(select(func.count()).select_from(User)) or 0
            users["consenting"] = s.scalar(select(func.count()).where(User.consent.is_(True))) or 0
            users["reachable"] = s.scalar(select(func.count()).where(User.active.is_(True))) or 0
            # Active: wrote to the bot (row touched), checked in or asked with consent.
            active = (
                select(User.id)
                .where(User.updated_at >= since)
                .union(
                    select(Checkin.user_id).where(Checkin.started_at >= since),
                    select(Question.user_id).where(
                        Question.created_at >= since, Question.user_id.is_not(None)
                    ),
                )
            )
            users["active"] = s.scalar(select(func.count()).select_from(active.subquery())) or 0
            for day, zone, n in s.execute(
                select(Checkin.local_date, Checkin.zone, func.count())
                .where(Checkin.status == "done", Checkin.local_date.between(first, last))
                .group_by(Checkin.local_date, Checkin.zone)
            ):
                day_zone[(day, zone or "unknown")] += n
            for kind, n in s.execute(
                select(Question.kind, func.count())
                .where(Question.created_at >= since)
                .group_by(Question.kind)
            ):
                kinds[kind] += n
            for helpful, n in s.execute(
                select(Question.helpful, func.count())
                .where(Question.created_at >= since, Question.helpful.is_not(None))
                .group_by(Question.helpful)
            ):
                feedback[bool(helpful)] += n

    per_day = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row: dict[str, Any] = {"date": day.isoformat()}
        row.update({z: day_zone[(day, z)] for z in ZONE_IDS})
        row["count"] = sum(n for (d, _z), n in day_zone.items() if d == day)
        per_day.append(row)
    checkins_total = sum(day_zone.values())
    zone_counts = Counter[str]()
    for (_d, z), n in day_zone.items():
        zone_counts[z] += n
    questions_total = sum(kinds.values())
    rated = feedback[True] + feedback[False]
    return {
        "days": days,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "users": users,
        "checkins": {"total": checkins_total, "per_day": per_day},
        "zones": {
            z: {"count": zone_counts[z], "share": _share(zone_counts[z], checkins_total)}
            for z in ZONE_IDS
        },
        "questions": {
            "total": questions_total,
            "kinds": {
                k: {"count": kinds[k], "share": _share(kinds[k], questions_total)}
                for k in (*QUESTION_KINDS, *sorted(set(kinds) - set(QUESTION_KINDS)))
            },
        },
        "feedback": {
            "rated": rated,
            "helpful": feedback[True],
            "not_helpful": feedback[False],
            "helpful_share": _share(feedback[True], rated),
        },
    }


def render_stats(report: dict[str, Any], kb: Knowledge) -> str:
    lines = [
        kb.text(
            "maint_stats_title",
            days=report["days"],
            first=report["first_day"],
            last=report["last_day"],
        ),
        "",
    ]
    users = report["users"]
    if not users["total"] and not report["checkins"]["total"] and not report["questions"]["total"]:
        lines.append(kb.text("maint_stats_empty"))
        return "\n".join(lines)
    lines += [kb.text("maint_stats_users", **users), ""]

    zones: dict[str, Zone] = {z.id: z for z in kb.traffic_light.zones}
    checkins = report["checkins"]
    if checkins["total"]:
        lines.append(kb.text("maint_stats_checkins_title", total=checkins["total"]))
        day_head, count_head = (
            kb.text("maint_stats_checkins_header"),
            kb.text("maint_stats_checkins_count"),
        )
        head = f"  {day_head:<10} {count_head:>5}"
        # The zone symbols are emoji, two columns wide on a terminal.
        lines.append(head + "".join(f" {zones[z].symbol:>2}" for z in ZONE_IDS))
        for row in checkins["per_day"]:
            if not row["count"] and report["days"] > SHOW_EMPTY_DAYS:
                continue
            counts = "".join(f" {row[z]:>3}" for z in ZONE_IDS)
            lines.append(f"  {row['date']:<10} {row['count']:>5}{counts}")
        lines += ["", kb.text("maint_stats_zones_title")]
        for z in ZONE_IDS:
            figures = report["zones"][z]
            lines.append(
                "  "
                + kb.text(
                    "maint_stats_zone_line",
                    symbol=zones[z].symbol,
                    label=zones[z].label,
                    count=figures["count"],
                    share=_pct(figures["share"], kb),
                )
            )
    else:
        lines.append(kb.text("maint_stats_no_checkins"))
    lines.append("")

    questions = report["questions"]
    if questions["total"]:
        lines.append(kb.text("maint_stats_questions_title", total=questions["total"]))
        for kind, figures in questions["kinds"].items():
            key = f"maint_stats_kind_{kind}"
            label = kb.text(key) if key in kb.texts else kind
            lines.append(
                "  "
                + kb.text(
                    "maint_stats_kind_line",
                    label=label,
                    count=figures["count"],
                    share=_pct(figures["share"], kb),
                )
            )
    else:
        lines.append(kb.text("maint_stats_no_questions"))
    fb = report["feedback"]
    if fb["rated"]:
        lines.append(
            kb.text(
                "maint_stats_feedback",
                rated=fb["rated"],
                helpful=fb["helpful"],
                not_helpful=fb["not_helpful"],
                share=_pct(fb["helpful_share"], kb),
            )
        )
    else:
        lines.append(kb.text("maint_stats_no_feedback"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


@dataclass
class _Context:
    settings: Settings
    kb: Knowledge
    db: Database | None  # None: a SQLite file that does not exist yet, so nothing to report


def _open() -> _Context | int:
    """Settings, knowledge and database, or an exit code after one clear line on stderr."""
    try:
        settings = load_settings()
        kb = load_knowledge(settings.knowledge_dir, settings.intents_dir)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        print("run `python -m bot validate` for details", file=sys.stderr)
        return 1
    db = Database(settings.database_url)
    if db.dialect == "sqlite":
        # Reading must not create the file: a missing one simply holds nothing yet.
        name = db.url.database or ""
        if name and name != ":memory:" and not name.startswith("file:") and not Path(name).exists():
            db.dispose()
            return _Context(settings, kb, None)
    return _Context(settings, kb, db)


def _run(
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    build: Callable[[argparse.Namespace, _Context], dict[str, Any]],
    render: Callable[[dict[str, Any], Knowledge], str],
) -> int:
    args = parser.parse_args(list(argv))
    ctx = _open()
    if isinstance(ctx, int):
        return ctx
    db = ctx.db
    try:
        if db is None or not _has_tables(db):
            print(ctx.kb.text("maint_no_tables"), file=sys.stderr)
        report = build(args, ctx)
    except SQLAlchemyError as exc:  # an unreachable or broken database: one clear line
        shown = db.url.render_as_string(hide_password=True) if db else "database"
        print(f"{shown}: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        if db is not None:
            db.dispose()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render(report, ctx.kb))
    return 0


def gaps_main(argv: list[str]) -> int:
    """`python -m bot gaps`: the questions the bot could not answer well, grouped."""
    parser = argparse.ArgumentParser(prog="python -m bot gaps", description=gaps_main.__doc__)
    parser.add_argument("--days", type=_positive, default=DEFAULT_GAP_DAYS, help="look back N days")
    parser.add_argument("--limit", type=_positive, default=DEFAULT_GAP_LIMIT, help="show N groups")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def build(args: argparse.Namespace, ctx: _Context) -> dict[str, Any]:
        since = utcnow() - timedelta(days=args.days)
        questions = gap_questions(ctx.db, since)
        normaliser = None
        if questions:  # the Danish processor takes seconds to load: only when needed
            from bot.textproc import build_processor

            proc = build_processor(ctx.kb, ctx.settings.cache_dir)
            normaliser = processor_normaliser(proc)
        return gap_report(
            questions, ctx.kb, normaliser, days=args.days, since=since, limit=args.limit
        )

    return _run(argv, parser, build, render_gaps)


def stats_main(argv: list[str]) -> int:
    """`python -m bot stats`: users, check-ins, zones, answer rates and feedback."""
    parser = argparse.ArgumentParser(prog="python -m bot stats", description=stats_main.__doc__)
    parser.add_argument("--days", type=_positive, default=DEFAULT_STATS_DAYS, help="last N days")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def build(args: argparse.Namespace, ctx: _Context) -> dict[str, Any]:
        return stats_report(ctx.db, days=args.days, tz=ctx.settings.timezone)

    return _run(argv, parser, build, render_stats)
