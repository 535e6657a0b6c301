"""The maintainers' reports: `python -m bot stats` here, `gaps` in bot/gaps.py, and what
both share (opening settings, knowledge and database; one clear line on errors).

Each report is first a plain dict (what `--json` prints), then rendered as text with the
Danish headings of knowledge/texts/maintenance.yaml. No user id is ever selected, so none
can be printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from bot.knowledge import Knowledge, KnowledgeError, Zone, load_knowledge
from bot.settings import Settings, SettingsError, load_settings
from bot.storage import Checkin, Database, Question, User, utcnow

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


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def has_tables(db: Database) -> bool:
    names = set(inspect(db.engine).get_table_names())
    return {User.__tablename__, Checkin.__tablename__, Question.__tablename__} <= names


def pct(value: float | None, kb: Knowledge) -> str:
    if value is None:
        return kb.text("maint_share_none")
    return f"{value * 100:.0f} %"


def quote(text: str, width: int = 160) -> str:
    """One line, clipped: a maintainer scans the list, the JSON has the full text."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


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
    if db is not None and has_tables(db):
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
            z: {"count": zone_counts[z], "share": share(zone_counts[z], checkins_total)}
            for z in ZONE_IDS
        },
        "questions": {
            "total": questions_total,
            "kinds": {
                k: {"count": kinds[k], "share": share(kinds[k], questions_total)}
                for k in (*QUESTION_KINDS, *sorted(set(kinds) - set(QUESTION_KINDS)))
            },
        },
        "feedback": {
            "rated": rated,
            "helpful": feedback[True],
            "not_helpful": feedback[False],
            "helpful_share": share(feedback[True], rated),
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
                    share=pct(figures["share"], kb),
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
                    share=pct(figures["share"], kb),
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
                share=pct(fb["helpful_share"], kb),
            )
        )
    else:
        lines.append(kb.text("maint_stats_no_feedback"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


@dataclass
class Context:
    settings: Settings
    kb: Knowledge
    db: Database | None  # None: a SQLite file that does not exist yet, so nothing to report


def _open() -> Context | int:
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
            return Context(settings, kb, None)
    return Context(settings, kb, db)


def run_report(
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    build: Callable[[argparse.Namespace, Context], dict[str, Any]],
    render: Callable[[dict[str, Any], Knowledge], str],
) -> int:
    args = parser.parse_args(list(argv))
    ctx = _open()
    if isinstance(ctx, int):
        return ctx
    db = ctx.db
    try:
        if db is None or not has_tables(db):
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


def stats_main(argv: list[str]) -> int:
    """`python -m bot stats`: users, check-ins, zones, answer rates and feedback."""
    parser = argparse.ArgumentParser(prog="python -m bot stats", description=stats_main.__doc__)
    parser.add_argument("--days", type=positive, default=DEFAULT_STATS_DAYS, help="last N days")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        return stats_report(ctx.db, days=args.days, tz=ctx.settings.timezone)

    return run_report(argv, parser, build, render_stats)
