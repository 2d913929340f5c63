"""The `obsbundle` console script: generate, check, exporter <kind>, demo."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from obsbundle import __version__, config
from obsbundle.errors import ConfigError, ObsbundleError
from obsbundle.secrets import scrub, setup_logging

DEFAULT_CONFIG = os.environ.get("OBSBUNDLE_CONFIG", "obsbundle.yaml")
log = logging.getLogger("obsbundle")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obsbundle",
        description="Tenant-aware exporters, collectors, and generated dashboards and alerts.",
    )
    parser.add_argument("--version", action="version", version=f"obsbundle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser("generate", help="write dashboards/ and alerts/ from code and config")
    _add_config(gen)
    gen.add_argument("--output-dir", default=".", help="project root to write into (default: .)")

    chk = sub.add_parser("check", help="fail on drift, schema or lint errors in generated files")
    _add_config(chk)
    chk.add_argument("--output-dir", default=".", help="project root holding dashboards/ and alerts/")

    exp = sub.add_parser("exporter", help="run an exporter process")
    exp.add_argument("kind", choices=_exporter_kinds(), help="which exporter")
    _add_config(exp)
    exp.add_argument("--web.listen-address", dest="listen_address", default=None,
                     help="host:port to listen on (default: from config exporter.listen_addresses)")
    exp.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics",
                     help="path under which to expose metrics (default: %(default)s)")
    exp.add_argument("--web.config.file", dest="web_config_file", default=None,
                     help="exporter-toolkit web config (TLS, basic auth); default: plain HTTP")
    exp.add_argument("--scrape-timeout", default=None,
                     help="deadline for one scrape, e.g. 10s (default: config exporter.scrape_timeout)")
    exp.add_argument("--log.level", dest="log_level", default="info",
                     choices=["debug", "info", "warning", "error"])
    exp.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"],
                     help="log line format (default: %(default)s)")

    usage = sub.add_parser("usage", help="per-tenant usage and cost")
    usage_sub = usage.add_subparsers(dest="usage_command", metavar="SUBCOMMAND", required=True)
    report = usage_sub.add_parser("report", help="usage and cost per tenant over a date range, from Prometheus")
    _add_config(report)
    report.add_argument("--prometheus", required=True, help="base URL of a Prometheus-compatible query API")
    report.add_argument("--from", dest="start", required=True, help="first day, UTC (2026-11-01)")
    report.add_argument("--to", dest="end", required=True, help="end, exclusive, UTC (2026-12-01)")
    report.add_argument("--tenant", default=None, help="only this tenant (a page a customer can be sent)")
    report.add_argument("--format", choices=["csv", "json", "html"], default="csv")
    report.add_argument("--output", default="-", help="file to write (default: standard output)")

    from obsbundle.demo.incidents import DEFAULT, INCIDENTS

    demo = sub.add_parser("demo", help="the whole loop on loopback: seeded services and incidents, exporters, "
                                       "Prometheus, Alertmanager, notifications printed as they arrive")
    _add_config(demo)
    demo.add_argument("--duration", default=None, help="stop after this long (e.g. 60s); default: until Ctrl-C")
    demo.add_argument("--incident", action="append", choices=sorted(INCIDENTS), metavar="NAME",
                      help=f"start this incident (repeatable; default: {', '.join(DEFAULT)}; "
                           f"one of {', '.join(sorted(INCIDENTS))})")
    return parser


def _exporter_kinds() -> list[str]:
    from exporters import KINDS

    return list(KINDS)


def run_exporter(args: argparse.Namespace) -> int:
    from exporters.http import ExporterServer
    from exporters.runtime import ScrapeRunner, return_large_blocks_to_the_os
    from exporters.webconfig import load_web_config
    from obsbundle.catalog import catalog_for
    from obsbundle.settings import settings

    setup_logging(args.log_level, args.log_format)
    return_large_blocks_to_the_os()
    cfg = config.load(args.config)
    try:
        module = importlib.import_module(f"exporters.{args.kind}")
    except ModuleNotFoundError:
        raise ObsbundleError(f"exporter {args.kind}: not available in this build") from None
    typed = settings(cfg)
    collectors, resolvers = module.build(typed)
    if args.scrape_timeout is not None:  # the same schema bounds as exporter.scrape_timeout
        try:
            config.validate_section("exporter", {**cfg["exporter"], "scrape_timeout": args.scrape_timeout})
        except ConfigError as exc:
            raise ConfigError(f"--scrape-timeout {args.scrape_timeout}: {str(exc).split(': ', 1)[-1]}") from None
    timeout = config.parse_duration(args.scrape_timeout) if args.scrape_timeout else typed.exporter.scrape_timeout
    listen = args.listen_address or typed.exporter.listen_addresses.get(args.kind)
    if not listen:
        raise ObsbundleError(f"exporter {args.kind}: no --web.listen-address given")
    web_config = load_web_config(args.web_config_file)
    if web_config.tls:
        web_config.ssl_context()  # a bad certificate or key fails here, in one line, before serving
    runner = ScrapeRunner(args.kind, collectors, catalog_for(cfg), timeout, resolvers)
    server = ExporterServer(runner, listen, args.telemetry_path, web_config)

    def stop(signum: int, _frame: object) -> None:
        log.info("received signal %d, shutting down", signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.runner.close()
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from generators import write_all

    written = write_all(config.load(args.config), Path(args.output_dir))
    print(f"wrote {len(written)} files")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from generators import check_all
    from generators.alerts import placeholder_warnings

    cfg = config.load(args.config)
    for warning in placeholder_warnings(cfg):
        print(f"warning: {warning}", file=sys.stderr)
    problems = check_all(cfg, Path(args.output_dir))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"obsbundle check: {len(problems)} problem(s); run `obsbundle generate`", file=sys.stderr)
        return 1
    print("obsbundle check: generated files are current and valid")
    return 0


def run_usage(args: argparse.Namespace) -> int:
    from obsbundle.cost.cli import run_report

    return run_report(config.load(args.config), args)


def run_demo(args: argparse.Namespace) -> int:
    from obsbundle.demo.stack import run

    setup_logging("info")
    return run(config.load(args.config), args)


COMMANDS = {"generate": run_generate, "check": run_check, "exporter": run_exporter, "demo": run_demo,
            "usage": run_usage}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ObsbundleError as exc:
        print(f"obsbundle: {scrub(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, never a traceback, never a secret
        if os.environ.get("OBSBUNDLE_DEBUG"):
            raise
        print(f"obsbundle: internal error: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
