"""`python -m bot ask` and `python -m bot eval` as other tools call them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.ask import shared
from bot.evaluate import Case, passes, score_cases

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"kind", "guide", "id", "title", "text", "score"}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ask_json_prints_one_contract_object() -> None:
    proc = _run("ask", "kan jeg løbe med ondt under ballen?", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == KEYS
    assert out["kind"] == "answer"
    assert out["guide"] == "proximal"
    kb, _ = shared()
    assert out["id"] in kb.entries
    assert out["title"] == kb.entries[out["id"]].title
    assert kb.entries[out["id"]].text.strip() in out["text"]
    assert 0 <= out["score"] <= 100


def test_ask_batch_reads_stdin_in_order() -> None:
    messages = [
        "kan jeg løbe med ondt under ballen?",
        "smerten vækker mig om natten",
        "hvilke løbesko skal jeg købe",
        "",
        "hej",
        "hvad er slidgigt i hoften",
    ]
    proc = _run("ask", "-", "--guide", "distal", stdin="\n".join(messages) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(messages)
    assert all(set(r) == KEYS and r["text"] for r in rows)
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "answer" and rows[0]["guide"] == "proximal"  # the message beats --guide
    assert kinds[1] == "red_flag" and "læge" in rows[1]["text"]
    assert kinds[2] == "fallback"
    assert kinds[3] == "fallback"
    assert kinds[4] == "intent" and rows[4]["id"] == "hilsen"
    assert kinds[5] == "answer" and rows[5]["guide"] == "hip"


def test_ask_rejects_an_unknown_guide() -> None:
    proc = _run("ask", "hej", "--guide", "knee")
    assert proc.returncode == 2
    assert "unknown guide" in proc.stderr


def test_eval_scores_a_fixture_file(tmp_path: Path) -> None:
    fixture = tmp_path / "cases.yaml"
    fixture.write_text(
        """
- id: good-answer
  q: kan jeg løbe med ondt under ballen?
  expect: answer
  guide: proximal
  any_of: [modificeret form]
  style: plain
- id: good-flag
  q: smerten vækker mig om natten
  expect: red_flag
  guide: any
  any_of: [læge]
  style: plain
- id: good-fallback
  q: hvilke løbesko skal jeg købe
  expect: fallback
  guide: any
  any_of: []
  style: short
- id: wrong-on-purpose
  q: hvilke løbesko skal jeg købe
  expect: answer
  guide: hip
  any_of: [noget der ikke står der]
  style: short
""",
        encoding="utf-8",
    )
    proc = _run("eval", str(fixture))
    assert proc.returncode == 0, proc.stderr
    assert "overall    75.0% (3/4)" in proc.stdout
    assert "short" in proc.stdout and "50.0% (1/2)" in proc.stdout
    assert "wrong-on-purpose" in proc.stdout
    assert "good-answer:" not in proc.stdout


@pytest.mark.parametrize(
    ("case", "out", "ok"),
    [
        (
            Case("a", "q", "answer", "any", ("Foo",)),
            {"kind": "clarify", "guide": None, "text": ""},
            True,
        ),
        (
            Case("a", "q", "answer", "any", ("Foo",)),
            {"kind": "answer", "guide": "hip", "text": "foo"},
            False,
        ),
        (
            Case("a", "q", "answer", "distal", ("Foo",)),
            {"kind": "answer", "guide": "distal", "text": "x foo"},
            True,
        ),
        (
            Case("a", "q", "answer", "distal", ("Foo",)),
            {"kind": "answer", "guide": "distal", "text": "bar"},
            False,
        ),
        (Case("a", "q", "fallback"), {"kind": "intent", "guide": None, "text": "Hej"}, True),
        (Case("a", "q", "fallback"), {"kind": "answer", "guide": "hip", "text": "x"}, False),
        (
            Case("a", "q", "red_flag"),
            {"kind": "answer", "guide": "hip", "text": "Kontakt din LÆGE"},
            True,
        ),
        (Case("a", "q", "red_flag"), {"kind": "red_flag", "guide": None, "text": "nej"}, False),
    ],
)
def test_scoring_rules(case: Case, out: dict[str, object], ok: bool) -> None:
    kb, _ = shared()
    assert passes(case, out, kb.vocab.words("doctor_words")) is ok


def test_own_eval_cases_meet_the_targets() -> None:
    from bot.evaluate import load_cases

    kb, matcher = shared()
    report = score_cases(kb, matcher, load_cases(ROOT / "tests" / "eval" / "cases.yaml"))
    assert report.total >= 60
    assert report.accuracy >= 0.9
    assert report.kind_accuracy("red_flag") == 1.0
    assert report.kind_accuracy("fallback") >= 0.9
