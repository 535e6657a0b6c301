"""Start-up: process start to the first answer printed by `python -m bot ask`, median of N runs,
warm (the matching caches exist) and rebuilding (an empty CACHE_DIR: the lemma table, the
ranker, its cross-validation and the fusion model are built before the answer), each beside
anchors measured in the same run: a bare interpreter, `import spacy`, `import sklearn`.

Beside each wall-clock time: the CPU seconds (user + system) of the whole process tree (the
rebuild forks a child to use the second core), which other jobs on the machine disturb less.
A rebuild's process ends after its forked child has written the cache; the time to its first
answer is what is measured.

Run: .venv/bin/python bench/coldstart.py [--runs 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "kan jeg løbe med ondt under ballen?"


Run = tuple[float, float]  # (wall seconds to the first line, CPU seconds of the process tree)


def _tree_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: list[str], env: dict[str, str] | None = None, first_line: bool = False) -> Run:
    cpu = _tree_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    if first_line and not line.startswith("{"):
        raise SystemExit(f"no answer printed: {line!r}")
    return elapsed, _tree_cpu() - cpu


def ask(cache_dir: str | None = None) -> Run:
    env = dict(os.environ)
    if cache_dir is not None:
        env["CACHE_DIR"] = cache_dir
    argv = [sys.executable, "-m", "bot", "ask", QUESTION, "--json"]
    return timed(argv, env, first_line=True)


def median_of(runs: int, measure: Callable[[], Run]) -> tuple[float, float, list[float]]:
    """Median wall time, median CPU time, and every run's wall time."""
    values = [measure() for _ in range(runs)]
    walls = [w for w, _ in values]
    return statistics.median(walls), statistics.median(c for _, c in values), walls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"warm-up (fills the project's cache if needed): {ask()[0]:.2f} s")
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
        med, cpu, _ = median_of(args.runs, functools.partial(timed, argv))
        print(f"anchor  {name:<34} median {med:.2f} s   cpu {cpu:.2f} s")
    med, cpu, values = median_of(args.runs, ask)
    print(
        f"warm start to first answer (target <= 1.5 s)   median {med:.2f} s   cpu {cpu:.2f} s"
        "   runs " + ", ".join(f"{v:.2f}" for v in values)
    )

    def rebuild() -> Run:
        with tempfile.TemporaryDirectory() as empty:
            return ask(empty)

    med, cpu, values = median_of(max(1, args.runs // 2), rebuild)
    print(
        f"start rebuilding every cache (target <= 3 s)   median {med:.2f} s   cpu {cpu:.2f} s"
        "   runs " + ", ".join(f"{v:.2f}" for v in values)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
