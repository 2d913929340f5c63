"""`python -m benchmarks` (`make bench`): run every area's benchmark package in turn.

Each area owns `benchmarks/<area>/` and runs alone as `python -m benchmarks.<area>`; here each
one runs as its own process, so one area's services and exit code cannot disturb the next.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    status = 0
    root = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda i: i.name):
        if info.ispkg and not info.name.startswith("_"):
            print(f"== benchmarks.{info.name}", flush=True)
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{info.name}"], cwd=root.parent)
            status = max(status, done.returncode)
    return status


if __name__ == "__main__":
    sys.exit(main())
