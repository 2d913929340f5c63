"""`python -m benchmarks` (`make bench`): run every area's benchmark package in turn.

Each area owns `benchmarks/<area>/` and runs alone as `python -m benchmarks.<area>`; here each
one runs as its own process, so one area's services and exit code cannot disturb the next.

`--tenants 10000` (`make bench TENANTS=10000`) runs the 10,000-tenant case instead: PostgreSQL
(80,000 tables) then Redis (10 million keys), each against its peer in the same run, about 20
minutes on a 2-core machine. It is an option so that the default `make bench` stays short.
"""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
from pathlib import Path

SCALED = ("postgres", "redis")  # the areas with a --tenants case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, help="run only the PostgreSQL and Redis cases at this many tenants")
    args = parser.parse_args(argv)
    status = 0
    root = Path(__file__).parent
    if args.tenants:
        for area in SCALED:
            print(f"== benchmarks.{area} --tenants {args.tenants}", flush=True)
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{area}", "--tenants", str(args.tenants)],
                                  cwd=root.parent)
            status = max(status, done.returncode)
        return status
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda i: i.name):
        if info.ispkg and not info.name.startswith("_"):
            print(f"== benchmarks.{info.name}", flush=True)
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{info.name}"], cwd=root.parent)
            status = max(status, done.returncode)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
