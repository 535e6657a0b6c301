"""Peak RSS of an `ask -` process answering the dev set (all messages through stdin).

Run: .venv/bin/python bench/memory.py [EVAL.yaml]
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "eval" / "dev.yaml"
    messages = [str(c["q"]).replace("\n", " ") for c in yaml.safe_load(path.read_text("utf-8"))]
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "-"],
        cwd=ROOT,
        input="\n".join(messages) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    answered = len(proc.stdout.splitlines())
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    # Anchor, measured in the same run: a process that only loads spaCy's blank Danish pipeline
    # (ru_maxrss of children is the largest child so far, so this one runs second and is read
    # from its own report).
    anchor = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, spacy; spacy.blank('da');"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"answered {answered}/{len(messages)} messages")
    print(f"peak RSS {peak_kb / 1024:.0f} MB (target <= 250 MB)")
    print(f"anchor: spaCy blank('da') alone {int(anchor.stdout) / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
