"""`python -m benchmarks` (`make bench`): run every area's benchmark package in turn.

Each area owns `benchmarks/<area>/` and runs alone as `python -m benchmarks.<area>`; here each
one runs as its own process, so one area's services and exit code cannot disturb the next.

`--tenants 10000` (`make bench TENANTS=10000`) runs the 10,000-tenant case instead: PostgreSQL
(80,000 tables) then Redis (10 million keys), each against its peer in the same run, about 20
minutes on a 2-core machine. It is an option so that the default `make bench` stays short.
"""

from __future__ import annotations

import argparse
import os
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.results import ENV, record, table

SCALED = ("postgres", "redis")  # the areas with a --tenants case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, help="run only the PostgreSQL and Redis cases at this many tenants")
    args = parser.parse_args(argv)
    root = Path(__file__).parent
    if args.tenants:
        runs = [(area, ["--tenants", str(args.tenants)]) for area in SCALED]
    else:
        runs = [(info.name, []) for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda i: i.name)
                if info.ispkg and not info.name.startswith("_")]
    status = 0
    with tempfile.TemporaryDirectory(prefix="obsbundle-bench-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = {**os.environ, ENV: str(results)}
        for area, extra in runs:
            print(f"== benchmarks.{area} {' '.join(extra)}", flush=True)
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{area}", *extra], cwd=root.parent, env=env)
            status = max(status, done.returncode)
            if done.returncode:
                record(area, "benchmark run", f"exit {done.returncode}", met=False)
        print("\n== all benchmarks, this run\n")
        print(table(results))
    return status

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
