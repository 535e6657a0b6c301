"""The maintainers' loop: `gaps` groups badly answered questions, `stats` sums up use.

Seeded databases on SQLite and PostgreSQL; expected figures are computed here from the
seed lists, not copied from the reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import gaps, maintenance
from bot.gaps import (
    PARAPHRASE_COSINE,
    GapQuestion,
    Paraphrases,
    cosine,
    gap_questions,
    gap_report,
    group_questions,
    paraphrases_for,
    render_gaps,
)
from bot.knowledge import Knowledge
from bot.maintenance import render_stats, stats_report
from bot.settings import PROJECT_ROOT
from bot.storage import Checkin, Database, Question, User, utcnow
from tests.engine_helpers import knowledge_and_matcher

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
USER_IDS = (987654321, 876543219, 765432198)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Knowledge, Paraphrases]:
    kb, matcher = knowledge_and_matcher(tmp_path_factory.mktemp("cache"))
    return kb, paraphrases_for(kb, matcher.proc)


@pytest.fixture(scope="module")
def kb(loaded: tuple[Knowledge, Paraphrases]) -> Knowledge:
    return loaded[0]


@pytest.fixture(scope="module")
def norm(loaded: tuple[Knowledge, Paraphrases]) -> Paraphrases:
    return loaded[1]


@pytest.fixture(scope="module")
def entry_id(kb: Knowledge) -> str:
    return sorted(kb.entries)[0]


# --------------------------------------------------------------------------- the seed

SWIM = [
    "Kan jeg svømme med ondt i hasen?",
    "kan jeg svomme med ondt i hasen",
    "kan jeg svomme med ondt i hasen",
    "må man svømme når hasesenen gør ondt",
    "kan jeg svømme med hasesene smerter",
]
PADEL = ["må jeg spille padel", "kan jeg spille paddel"]
PADEL_ANSWERED = "Er padel ok for min hase?"
ALCOHOL = "hvad med alkohol"
OLD_GAP = "må jeg stå på ski i vinterferien"


@dataclass(frozen=True)
class Q:
    text: str
    kind: str
    days_ago: float
    entry: bool = False  # the bot chose the seeded entry
    helpful: bool | None = None
    user: int | None = None


@dataclass(frozen=True)
class C:
    user: int
    days_ago: int
    status: str
    zone: str | None


def seed_questions() -> list[Q]:
    qs = [Q(t, "fallback", 1 + i, user=USER_IDS[i % 2]) for i, t in enumerate(SWIM)]
    qs += [Q(t, "fallback", 2 + i, user=None) for i, t in enumerate(PADEL)]
    qs += [
        Q(PADEL_ANSWERED, "answer", 3, entry=True, helpful=False, user=USER_IDS[0]),
        Q(ALCOHOL, "fallback", 4, user=USER_IDS[1]),
        Q("hvordan laver jeg broen", "answer", 2, entry=True, helpful=True, user=USER_IDS[0]),
        Q("hvor skal jeg strække", "answer", 5, entry=True, helpful=True, user=USER_IDS[1]),
        Q("hvor skal jeg strække ud", "answer", 6, entry=True, user=USER_IDS[1]),
        Q("ondt", "clarify", 1, user=None),
        Q("hævet og rødt knæ", "red_flag", 2, user=USER_IDS[0]),
        Q(OLD_GAP, "fallback", 40, user=USER_IDS[0]),
        Q("gammelt svar", "answer", 40, entry=True, helpful=False, user=USER_IDS[1]),
    ]
    return qs


def seed_checkins() -> list[C]:
    a, b, _ = USER_IDS
    rows = [
        C(a, 0, "done", "green"),
        C(a, 1, "done", "green"),
        C(a, 2, "done", "yellow"),
        C(a, 2, "replaced", "red"),
        C(a, 5, "done", "red"),
        C(b, 0, "open", None),
        C(b, 1, "done", "yellow"),
        C(b, 3, "done", "green"),
        C(b, 30, "done", "red"),
    ]
    return rows


# user id -> (consent, active flag, days since the row was last touched)
USERS = {
    USER_IDS[0]: (True, True, 1),
    USER_IDS[1]: (True, False, 60),
    USER_IDS[2]: (False, True, 50),
}


def seed(db: Database, kb: Knowledge, entry_id: str, now: datetime = NOW) -> None:
    with db.session() as s:
        for uid, (consent, active, touched) in USERS.items():
            at = now - timedelta(days=touched)
            s.add(User(id=uid, chat_id=uid, consent=consent, active=active, updated_at=at))
        s.flush()
        for c in seed_checkins():
            started = now - timedelta(days=c.days_ago, hours=1)
            s.add(
                Checkin(
                    user_id=c.user,
                    local_date=now.date() - timedelta(days=c.days_ago),
                    status=c.status,
                    zone=c.zone,
                    pain=1 if c.zone else None,
                    started_at=started,
                    updated_at=started,
                )
            )
        for q in seed_questions():
            s.add(
                Question(
                    user_id=q.user,
                    text=q.text,
                    kind=q.kind,
                    guide=kb.entry_guide[entry_id] if q.entry else None,
                    entry_id=entry_id if q.entry else None,
                    score=0.5,
                    helpful=q.helpful,
                    created_at=now - timedelta(days=q.days_ago),
                )
            )
        s.commit()


# --------------------------------------------------------------------------- similarity


def test_paraphrases_forgive_typos_but_not_a_different_activity(norm: Paraphrases) -> None:
    def sim(a: str, b: str) -> float:
        return cosine(norm.vector(a), norm.vector(b))

    assert sim("kan jeg spille padel", "må jeg spille paddel") >= PARAPHRASE_COSINE
    # What the knowledge says everywhere (ondt i hasen) does not make two questions one.
    assert sim("kan jeg svømme med ondt i hasen", "kan jeg cykle med ondt i hasen") < (
        PARAPHRASE_COSINE
    )
    # A one-word question is a subset of the longer one, yet not the same question.
    assert sim("smerter", "smerter i hoften når jeg danser") < PARAPHRASE_COSINE


def test_one_question_typed_three_ways_is_one_group(norm: Paraphrases) -> None:
    texts = ["må jeg løbe?", "ma jeg lobe idag", "må jeg gerne løbe?", "hvad med alkohol"]
    groups = group_questions([GapQuestion(t, "fallback", None, None) for t in texts], norm)
    assert sorted(g.count for g in groups) == [1, 3]


def test_emoji_only_questions_group_only_with_their_like(norm: Paraphrases) -> None:
    texts = ["🙂", "🙂", "???", "hvad med alkohol"]
    groups = group_questions([GapQuestion(t, "fallback", None, None) for t in texts], norm)
    assert sorted(sorted(q.text for q in g.questions) for g in groups) == [
        ["???"],
        ["hvad med alkohol"],
        ["🙂", "🙂"],
    ]


# --------------------------------------------------------------------------- gaps


def test_gaps_groups_near_duplicates_most_frequent_first(
    database: Database, kb: Knowledge, norm: Paraphrases, entry_id: str
) -> None:
    seed(database, kb, entry_id)
    since = NOW - timedelta(days=30)
    questions = gap_questions(database, since)
    report = gap_report(questions, kb, norm, days=30, since=since)

    in_window = [q for q in seed_questions() if q.days_ago <= 30]
    gaps = [q for q in in_window if q.kind == "fallback" or q.helpful is False]
    assert report["questions"] == len(gaps)

    groups = report["groups"]
    members = [{g["question"], *g["other_phrasings"]} for g in groups]
    assert [g["count"] for g in groups] == [len(SWIM), len(PADEL) + 1, 1]
    assert members[0] == set(SWIM)
    # The exact duplicate is the representative; the other three are its phrasings.
    assert groups[0]["question"] == "kan jeg svomme med ondt i hasen"
    assert len(groups[0]["other_phrasings"]) == 3
    assert members[1] == {*PADEL, PADEL_ANSWERED}
    assert members[2] == {ALCOHOL}

    swim, padel, alcohol = groups
    assert swim["entries"] == [{"id": None, "title": None, "count": len(SWIM)}]
    assert swim["not_helpful"] == 0 and swim["not_helpful_share"] == 0.0
    assert padel["entries"] == [
        {"id": None, "title": None, "count": 2},
        {"id": entry_id, "title": kb.entries[entry_id].title, "count": 1},
    ]
    assert padel["fallbacks"] == 2
    assert padel["not_helpful"] == 1
    assert padel["not_helpful_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert alcohol["fallbacks"] == 1

    everything = json.dumps(report, ensure_ascii=False)
    assert "broen" not in everything and "strække" not in everything  # helped, or no verdict
    assert OLD_GAP not in everything  # outside the window
    text = render_gaps(report, kb)
    for uid in USER_IDS:
        assert str(uid) not in text and str(uid) not in everything
    assert text.index("svomme") < text.index("padel") < text.index(ALCOHOL)
    assert kb.entries[entry_id].title in text and entry_id in text
    assert "–" in text  # fallbacks have no entry
    assert "1 af 3 (33 %)" in text
    # The answer that did not help is listed with the bot's confidence.
    assert [q["question"] for q in report["confident_not_helpful"]] == [PADEL_ANSWERED]
    assert kb.text("maint_gaps_confident_title") in text


def test_gaps_window_and_limit(
    database: Database, kb: Knowledge, norm: Paraphrases, entry_id: str
) -> None:
    seed(database, kb, entry_id)
    since = NOW - timedelta(days=60)
    report = gap_report(gap_questions(database, since), kb, norm, days=60, since=since, limit=2)
    texts = [q.text for q in gap_questions(database, since)]
    assert OLD_GAP in texts and "gammelt svar" in texts
    assert len(report["groups"]) == 2
    assert report["groups_total"] > 2
    assert [g["count"] for g in report["groups"]] == [len(SWIM), len(PADEL) + 1]


def test_gaps_name_entries_gone_from_the_knowledge(kb: Knowledge, norm: Paraphrases) -> None:
    questions = [GapQuestion("hvad med golf", "answer", "no_such_entry", False)]
    report = gap_report(questions, kb, norm, days=7, since=NOW)
    assert report["groups"][0]["entries"] == [{"id": "no_such_entry", "title": None, "count": 1}]
    text = render_gaps(report, kb)
    assert "no_such_entry" in text and "100 %" in text


def test_gaps_on_an_empty_database(database: Database, kb: Knowledge, norm: Paraphrases) -> None:
    report = gap_report(
        gap_questions(database, NOW - timedelta(days=30)), kb, norm, days=30, since=NOW
    )
    assert report["questions"] == 0 and report["groups"] == [] and report["groups_total"] == 0
    assert kb.text("maint_gaps_empty") in render_gaps(report, kb)
    assert gap_questions(None, NOW) == []


# --------------------------------------------------------------------------- stats


def test_stats_figures(database: Database, kb: Knowledge, entry_id: str) -> None:
    seed(database, kb, entry_id)
    days = 7
    report = stats_report(database, days=days, now=NOW, tz="UTC")
    first = TODAY - timedelta(days=days - 1)

    consent = [uid for uid, (c, _a, _t) in USERS.items() if c]
    reachable = [uid for uid, (_c, a, _t) in USERS.items() if a]
    done = [c for c in seed_checkins() if c.status == "done" and c.days_ago < days]
    questions = [q for q in seed_questions() if q.days_ago <= days]
    active = {uid for uid, (_c, _a, t) in USERS.items() if t <= days}
    active |= {c.user for c in seed_checkins() if c.days_ago < days}
    active |= {q.user for q in questions if q.user is not None}
    assert report["users"] == {
        "total": len(USERS),
        "consenting": len(consent),
        "reachable": len(reachable),
        "active": len(active),
    }

    assert report["first_day"] == first.isoformat() and report["last_day"] == TODAY.isoformat()
    per_day = report["checkins"]["per_day"]
    assert [row["date"] for row in per_day] == [
        (first + timedelta(days=i)).isoformat() for i in range(days)
    ]
    for row in per_day:
        day = date.fromisoformat(row["date"])
        mine = [c for c in done if TODAY - timedelta(days=c.days_ago) == day]
        assert row["count"] == len(mine)
        for zone in ("green", "yellow", "red"):
            assert row[zone] == sum(1 for c in mine if c.zone == zone)
    assert report["checkins"]["total"] == len(done)

    zones = Counter(c.zone for c in done)
    for zone in ("green", "yellow", "red"):
        assert report["zones"][zone]["count"] == zones[zone]
        assert report["zones"][zone]["share"] == pytest.approx(zones[zone] / len(done), abs=1e-4)

    kinds = Counter(q.kind for q in questions)
    assert report["questions"]["total"] == len(questions)
    for kind in ("answer", "clarify", "fallback", "red_flag", "intent"):
        figures = report["questions"]["kinds"][kind]
        assert figures["count"] == kinds[kind]
        assert figures["share"] == pytest.approx(kinds[kind] / len(questions), abs=1e-4)

    rated = [q for q in questions if q.helpful is not None]
    helped = [q for q in rated if q.helpful]
    assert report["feedback"] == {
        "rated": len(rated),
        "helpful": len(helped),
        "not_helpful": len(rated) - len(helped),
        "helpful_share": pytest.approx(len(helped) / len(rated), abs=1e-4),
    }

    text = render_stats(report, kb)
    for uid in USER_IDS:
        assert str(uid) not in text
    assert TODAY.isoformat() in text and (TODAY - timedelta(days=8)).isoformat() not in text
    assert kb.text("maint_stats_kind_fallback") in text


def test_stats_text_for_a_long_period_lists_only_days_with_checkins(
    database: Database, kb: Knowledge, entry_id: str
) -> None:
    seed(database, kb, entry_id)
    text = render_stats(stats_report(database, days=60, now=NOW), kb)
    days_with = {TODAY - timedelta(days=c.days_ago) for c in seed_checkins() if c.status == "done"}
    listed = {
        date.fromisoformat(line.split()[0]) for line in text.splitlines() if line[:4] == "  20"
    }
    assert listed == days_with


def test_stats_on_an_empty_database(database: Database, kb: Knowledge) -> None:
    report = stats_report(database, days=3, now=NOW)
    assert report["users"] == {"total": 0, "consenting": 0, "reachable": 0, "active": 0}
    assert report["checkins"]["total"] == 0 and len(report["checkins"]["per_day"]) == 3
    assert all(z["share"] is None for z in report["zones"].values())
    assert report["feedback"]["helpful_share"] is None
    assert kb.text("maint_stats_empty") in render_stats(report, kb)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, kb: Knowledge, tmp_path: Path) -> pytest.MonkeyPatch:
    """The commands' settings from the environment; the knowledge already loaded is reused."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(maintenance, "load_knowledge", lambda _k, _i: kb)
    return monkeypatch


def _json_of(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_stats_command_json_shape(
    database: Database,
    kb: Knowledge,
    entry_id: str,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(database, kb, entry_id, now=utcnow())
    cli_env.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    assert maintenance.stats_main(["--days", "5", "--json"]) == 0
    report = _json_of(capsys)
    assert set(report) == {
        "days",
        "first_day",
        "last_day",
        "users",
        "checkins",
        "zones",
        "questions",
        "feedback",
    }
    assert report["days"] == 5 and len(report["checkins"]["per_day"]) == 5
    assert set(report["checkins"]["per_day"][0]) == {
        "date",
        "count",
        "green",
        "yellow",
        "red",
    }
    assert report["users"]["total"] == len(USERS)
    assert maintenance.stats_main(["--days", "5"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and str(USER_IDS[0]) not in out


def test_commands_on_a_missing_sqlite_file(
    tmp_path: Path, kb: Knowledge, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "never.sqlite3"
    cli_env.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert gaps.gaps_main([]) == 0
    captured = capsys.readouterr()
    assert kb.text("maint_gaps_empty") in captured.out
    assert kb.text("maint_no_tables") in captured.err
    assert maintenance.stats_main(["--json"]) == 0
    assert _json_of(capsys)["users"]["total"] == 0
    assert not path.exists()


def test_gaps_command_on_an_empty_database(
    database: Database,
    kb: Knowledge,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    assert gaps.gaps_main(["--json"]) == 0
    report = _json_of(capsys)
    assert report["groups"] == [] and report["questions"] == 0
    assert maintenance.stats_main([]) == 0
    assert kb.text("maint_stats_empty") in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--days", "0"], ["--days", "x"], ["--limit", "-3"]])
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        gaps.gaps_main(argv)
    assert exc.value.code == 2
    assert "--" in capsys.readouterr().err


def test_unreachable_database_is_one_line(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("DATABASE_URL", "postgresql://bot:secret@127.0.0.1:1/nothing")
    assert maintenance.stats_main([]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "secret" not in err


def test_gaps_command_as_a_subprocess(
    tmp_path: Path, kb: Knowledge, entry_id: str, warm_cache: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    seed(db, kb, entry_id, now=utcnow())
    db.dispose()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{path}",
        "CACHE_DIR": str(warm_cache),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "gaps", "--json", "--limit", "5"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {
        "days",
        "since",
        "questions",
        "groups_total",
        "groups",
        "confident_not_helpful",
    }
    assert set(report["groups"][0]) == {
        "count",
        "fallbacks",
        "not_helpful",
        "not_helpful_share",
        "question",
        "other_phrasings",
        "entries",
    }
    assert [g["count"] for g in report["groups"]] == [len(SWIM), len(PADEL) + 1, 1]
    for uid in USER_IDS:
        assert str(uid) not in result.stdout
