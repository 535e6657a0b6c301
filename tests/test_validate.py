"""The knowledge validator: every kind of mistake, reported together as path:line: message."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.knowledge import load_knowledge
from bot.references import validate_all
from bot.settings import PROJECT_ROOT

KNOWLEDGE = PROJECT_ROOT / "knowledge"
INTENTS = PROJECT_ROOT / "intents"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(KNOWLEDGE, kdir)
    shutil.copytree(INTENTS, idir)
    return kdir, idir


def _edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="utf-8")
    new = change(text)
    assert new != text, f"the edit of {path.name} changed nothing"
    path.write_text(new, encoding="utf-8")


def _messages(kdir: Path, idir: Path) -> list[str]:
    return [str(p) for p in validate_all(kdir, idir)[1]]


def test_the_real_knowledge_is_valid() -> None:
    assert validate_all(KNOWLEDGE, INTENTS)[1] == []
    kb = load_knowledge(KNOWLEDGE, INTENTS)
    assert set(kb.guides) == {"proximal", "distal", "hip"}
    assert all(kb.entries_of(g) for g in kb.guides)


def test_yaml_syntax_error_points_at_the_line(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "synonyms.yaml", lambda t: t + "\n  broken: [unclosed\n  other: x\n")
    [msg] = _messages(kdir, idir)
    assert re.match(r"knowledge/synonyms\.yaml:\d+: YAML syntax error", msg)


def test_missing_field_and_empty_text(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "hip.yaml", lambda t: t.replace("    title:", "    titel:", 1))
    _edit(
        kdir / "texts" / "commands.yaml", lambda t: t.replace('not_admin: "', 'not_admin: "" #', 1)
    )
    msgs = _messages(kdir, idir)
    assert any(m.startswith("knowledge/hip.yaml:") and "title" in m for m in msgs), msgs
    assert any(
        "texts/commands.yaml:" in m and "not_admin" in m and "non-empty" in m for m in msgs
    ), msgs


def test_duplicate_ids_across_files(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    first_id = re.search(r"- id: (d_\w+)", (kdir / "distal.yaml").read_text(encoding="utf-8"))
    assert first_id is not None
    _edit(
        kdir / "hip.yaml",
        lambda t: re.sub(r"- id: h_\w+", f"- id: {first_id.group(1)}", t, count=1),
    )
    msgs = _messages(kdir, idir)
    assert any(
        "duplicate id" in m and first_id.group(1) in m and "distal.yaml:" in m for m in msgs
    ), msgs


def test_references_must_resolve(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "proximal.yaml", lambda t: t.replace("guide: proximal", "guide: proksimal", 1))
    _edit(
        kdir / "red_flags.yaml",
        lambda t: t.replace("guides: [proximal", "guides: [ankel, proximal", 1),
    )
    msgs = _messages(kdir, idir)
    assert any("proximal.yaml:" in m and "unknown guide 'proksimal'" in m for m in msgs), msgs
    assert any("red_flags.yaml:" in m and "unknown guide 'ankel'" in m for m in msgs), msgs


def test_related_id_must_exist(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(
        kdir / "distal.yaml",
        lambda t: re.sub(r"related: \[", "related: [findes_ikke, ", t, count=1),
    )
    msgs = _messages(kdir, idir)
    assert any("related id 'findes_ikke' does not exist" in m for m in msgs), msgs


def test_answer_must_be_quoted_verbatim(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(
        kdir / "proximal.yaml",
        lambda t: t.replace(
            "Total pause fra løb er sjældent nødvendigt", "Total pause er en god idé", 1
        ),
    )
    msgs = _messages(kdir, idir)
    assert any("not quoted verbatim" in m and "proximal.yaml:" in m for m in msgs), msgs


def test_telegram_limit(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "texts" / "dialogue.yaml", lambda t: t + f'\nlong_text: "{"x" * 5000}"\n')
    msgs = _messages(kdir, idir)
    assert any("long_text" in m and "4096" in m for m in msgs), msgs


def test_unknown_intent_action_and_duplicate_text_key(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(idir / "tak.yaml", lambda t: re.sub(r"action: \w+", "action: dance", t, count=1))
    _edit(kdir / "texts" / "reminders.yaml", lambda t: t + '\nhelp_intro: "igen"\n')
    msgs = _messages(kdir, idir)
    assert any(m.startswith("intents/tak.yaml:") and "unknown action 'dance'" in m for m in msgs), (
        msgs
    )
    assert any("duplicate text key 'help_intro'" in m for m in msgs), msgs


def test_traffic_light_thresholds_must_rise(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "traffic_light.yaml", lambda t: t.replace("max_pain: 5", "max_pain: 1", 1))
    msgs = _messages(kdir, idir)
    assert any("traffic_light.yaml:" in m and "max_pain must rise" in m for m in msgs), msgs


def test_all_problems_at_once_and_cli_exit_code(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _edit(kdir / "synonyms.yaml", lambda t: t + "\n  broken: [unclosed\n")
    _edit(idir / "tak.yaml", lambda t: re.sub(r"action: \w+", "action: dance", t, count=1))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "validate", "--knowledge", str(kdir), "--intents", str(idir)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if re.match(r"\S+\.yaml:\d+: ", ln)]
    assert len(lines) == 2, result.stderr
    assert "2 problem(s) found" in result.stderr

    ok = subprocess.run(
        [sys.executable, "-m", "bot", "validate"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert ok.returncode == 0 and "knowledge OK" in ok.stdout


# --------------------------------------------------------------- cross-validation check


def test_an_example_that_takes_over_another_entry_is_reported(
    tree: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An example under the wrong entry passes every schema check; the cross-validation
    decides it as the entry whose question it really asks, and validate says so."""
    from bot import validate as validate_cmd

    kdir, idir = tree
    stolen = "hvor mange måneder tager det før jeg er rask fra hasetendinopati"
    _edit(
        kdir / "proximal.yaml",
        lambda t: t.replace(
            "    examples:\n", f"    examples:\n      - {stolen}\n", 1
        ),  # the first entry (the running FAQ) now claims a duration question
    )
    kb = load_knowledge(kdir, idir)
    first = next(iter(kb.entries_of("proximal")))
    assert stolen in first.examples and first.id == "p_faq_loebe"
    found = dict(validate_cmd.takeovers(kb, tmp_path / "cache"))
    assert found.get(stolen) in {"p_faq_duration", "p_duration"}

    lines = validate_cmd.example_lines(tmp_path, [kdir, idir])
    path, line = lines[stolen]
    assert path == "knowledge/proximal.yaml"
    assert (
        (kdir / "proximal.yaml").read_text(encoding="utf-8").splitlines()[line - 1].endswith(stolen)
    )


def test_a_red_flag_phrase_holding_a_clause_word_is_reported(tree: tuple[Path, Path]) -> None:
    """ "men" splits a sentence, so "men gik ned igen" could only match as "gik ned igen"."""
    kdir, idir = tree
    _edit(
        kdir / "red_flags.yaml",
        lambda t: t.replace(
            'none_of: ["hævelsen er væk",', 'none_of: ["men gik ned", "hævelsen er væk",', 1
        ),
    )
    msgs = _messages(kdir, idir)
    assert any("red_flags.yaml:" in m and "'men gik ned' holds 'men'" in m for m in msgs), msgs
