"""One summary table for `make bench`: each area records its headline figures here as it runs.

`python -m benchmarks` sets OBSBUNDLE_BENCH_RESULTS to a JSON-lines file, runs every area in its
own process and prints every recorded row at the end, so all figures come from the same run.
Run alone (`python -m benchmarks.redis`), an area records nothing and prints its own report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "OBSBUNDLE_BENCH_RESULTS"


def record(area: str, figure: str, ours: str, peer: str = "", target: str = "", met: bool | None = None) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    row = {"area": area, "figure": figure, "obsbundle": ours, "peer": peer, "target": target, "met": met}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    lines = ["| area | figure | obsbundle | peer | target | met |", "|---|---|---:|---:|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['area']} | {r['figure']} | {r['obsbundle']} | {r['peer']} | {r['target']} | {met} |")
    return "\n".join(lines)
