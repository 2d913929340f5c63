"""`obsbundle usage report`: argument handling, progress bar and output for the usage report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from obsbundle.cost.formats import FORMATS
from obsbundle.cost.model import cost_model
from obsbundle.cost.report import PrometheusAPI, collect, parse_day
from obsbundle.errors import ConfigError

PROGRESS_MIN_DAYS = 3  # shorter ranges finish before a bar is worth drawing


def run_report(config: Mapping[str, Any], args: argparse.Namespace) -> int:
    model = cost_model(config)
    if not model.priced:
        raise ConfigError("cost.prices: no resource is priced, so there is nothing to report")
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    days = (end - start).total_seconds() / 86400

    def progress(chunks: Any) -> Any:
        # tqdm draws only on a terminal (disable=None), so files and pipes get clean output
        return tqdm(chunks, desc="days", unit="day", file=sys.stderr, disable=None if days >= PROGRESS_MIN_DAYS
                    else True, leave=False)

    api = PrometheusAPI(args.prometheus)
    try:
        report = collect(api, model, start, end, tenant=args.tenant, progress=progress)
    finally:
        api.close()
    text = FORMATS[args.format](report)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--output: cannot write {args.output}: {exc.strerror}") from None
        print(f"wrote {args.output}: {len(report.totals())} tenant(s), total "
              f"{report.total:.2f} {report.currency}", file=sys.stderr)
    return 0
