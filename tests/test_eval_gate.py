"""A regression gate on answering: the eval files must stay above the product's bar.

The bar is the issue's: at least 90% overall, every red flag, at least 90% of the
fallbacks. tests/eval/cases.yaml holds our own cases; ../shared/eval/dev.yaml is scored too when
it sits beside the checkout (as it does in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ask import shared
from bot.evaluate import load_cases, score_cases
from bot.settings import PROJECT_ROOT

# Held-out sets (tests/eval/holdout*.yaml) are measurements, not gates.
EVAL_FILES = [PROJECT_ROOT / "tests" / "eval" / "cases.yaml"]
DEV = PROJECT_ROOT.parent / "shared" / "eval" / "dev.yaml"


@pytest.mark.parametrize("path", [*EVAL_FILES, DEV], ids=lambda p: p.name)
def test_eval_file_meets_the_bar(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout")
    kb, matcher = shared()
    report = score_cases(kb, matcher, load_cases(path))
    assert report.total > 0
    overall = report.passed / report.total
    red = report.by_kind.get("red_flag", [0, 0])
    fallback = report.by_kind.get("fallback", [0, 0])
    assert overall >= 0.90, f"{path.name}: {report.passed}/{report.total}"
    assert red[0] == red[1], f"{path.name}: red flags {red}"
    assert fallback[1] == 0 or fallback[0] / fallback[1] >= 0.90, (
        f"{path.name}: fallback {fallback}"
    )
