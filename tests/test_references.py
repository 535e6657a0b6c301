"""Cross-references between code and YAML: texts the code asks for, unused texts, intents."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeError
from bot.references import load_checked, validate_all
from bot.settings import PROJECT_ROOT


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "knowledge", kdir)
    shutil.copytree(PROJECT_ROOT / "intents", idir)
    return kdir, idir


def _drop_line(path: Path, start: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(start)]
    assert len(kept) < len(lines), start
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def test_a_text_the_code_asks_for_must_exist(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    _drop_line(kdir / "texts" / "dialogue.yaml", "prompt_again:")
    _kb, problems = validate_all(kdir, idir)
    [problem] = [p for p in problems if not p.warning]
    assert problem.path == "bot/dialogs/router.py" and "'prompt_again'" in problem.message


def test_texts_the_code_builds_from_a_prefix_must_exist(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    for table in ("users", "checkins", "questions", "reminders", "reminder_deliveries"):
        _drop_line(kdir / "texts" / "data_rights.yaml", f"table_{table}:")
    _kb, problems = validate_all(kdir, idir)
    [problem] = [p for p in problems if not p.warning]
    assert problem.path == "bot/dialogs/data_rights.py" and "table_" in problem.message


def test_a_text_no_code_uses_is_a_warning_only(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    with (kdir / "texts" / "dialogue.yaml").open("a", encoding="utf-8") as fh:
        fh.write('\nforgotten_text: "ingen bruger mig"\n')
    _kb, problems = validate_all(kdir, idir)
    [problem] = problems
    assert problem.warning and "'forgotten_text'" in problem.message
    assert problem.path == "knowledge/texts/dialogue.yaml" and problem.line > 1
    assert load_checked(kdir, idir).text("forgotten_text") == "ingen bruger mig"


def test_an_intent_needs_tests_and_not_tests(tree: tuple[Path, Path]) -> None:
    kdir, idir = tree
    text = (idir / "tak.yaml").read_text(encoding="utf-8")
    (idir / "tak.yaml").write_text(text.split("not_tests:")[0], encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_checked(kdir, idir)
    assert any(
        p.path == "intents/tak.yaml" and "not_tests" in p.message for p in caught.value.problems
    )


def test_the_real_knowledge_has_no_reference_problems() -> None:
    _kb, problems = validate_all(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "intents")
    assert problems == []
