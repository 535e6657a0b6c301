"""Start-up: process start to the first answer printed by `python -m bot ask`, median of N runs,
warm (the matching caches exist) and rebuilding (an empty CACHE_DIR: the lemma table, the
ranker, its cross-validation and the fusion model are built before the answer), each beside
anchors measured in the same run: a bare interpreter, `import spacy`, `import sklearn`.

Run: .venv/bin/python bench/coldstart.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "kan jeg løbe med ondt under ballen?"


def timed(argv: list[str], env: dict[str, str] | None = None, first_line: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    if first_line and not line.startswith("{"):
        raise SystemExit(f"no answer printed: {line!r}")
    return elapsed


def ask(cache_dir: str | None = None) -> float:
    env = dict(os.environ)
    if cache_dir is not None:
        env["CACHE_DIR"] = cache_dir
    argv = [sys.executable, "-m", "bot", "ask", QUESTION, "--json"]
    return timed(argv, env, first_line=True)


def median_of(runs: int, measure: object) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]  # type: ignore[operator]
    return statistics.median(values), values


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"warm-up (fills the project's cache if needed): {ask():.2f} s")
    anchors = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import spacy; spacy.blank('da')": [
            sys.executable,
            "-c",
            "import spacy; spacy.blank('da')",
        ],
        "import sklearn.linear_model": [sys.executable, "-c", "import sklearn.linear_model"],
    }
    for name, argv in anchors.items():
        med, _ = median_of(args.runs, lambda argv=argv: timed(argv))
        print(f"anchor  {name:<34} median {med:.2f} s")
    med, values = median_of(args.runs, ask)
    print(
        f"warm start to first answer (target <= 1.5 s)   median {med:.2f} s   runs "
        + ", ".join(f"{v:.2f}" for v in values)
    )

    def rebuild() -> float:
        with tempfile.TemporaryDirectory() as empty:
            return ask(empty)

    med, values = median_of(max(1, args.runs // 2), rebuild)
    print(
        f"start rebuilding every cache (target <= 3 s)   median {med:.2f} s   runs "
        + ", ".join(f"{v:.2f}" for v in values)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
