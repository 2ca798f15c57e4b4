"""Command line of the emulator: ``td-emulator``, ``python -m td_emulator``, ``td-connector emulator``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import EmulatorConfig, FaultConfig, OutageWindow, WebhookConfig
from .seed import GROUP_TOKEN

__all__ = ["add_arguments", "config_from_args", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7300)
    parser.add_argument("--seed", type=Path, help="TOML or JSON file of extra users and companies")
    parser.add_argument("--no-demo-seed", action="store_true", help="do not register the demo companies")
    parser.add_argument("--group-companies", type=int, default=0, metavar="N",
                        help="register N companies and one user of all of them (a group's token)")
    parser.add_argument("--group-token", default=GROUP_TOKEN, help="token of that group user")
    parser.add_argument("--waste-codes", type=Path, help="JSON list of waste codes (membership checks)")
    parser.add_argument("--rate-limit", type=int, default=1000, help="requests per window and client IP")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window length in seconds")
    parser.add_argument("--error-probability", type=float, default=0.0, help="chance of a 502/503/504")
    parser.add_argument("--drop-after-commit-probability", type=float, default=0.0,
                        help="chance of committing a mutation then closing the connection unanswered")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every answer")
    parser.add_argument("--outage", action="append", default=[], metavar="START:END",
                        help="seconds after start during which every request gets 503 (repeatable)")
    parser.add_argument("--force-429", type=int, default=0, help="answer the next N requests with 429")
    parser.add_argument("--admin", action="store_true", help="enable the /_emulator/ admin API")
    parser.add_argument("--sqlite", type=Path, help="keep the state in this SQLite file")
    parser.add_argument("--no-webhooks", action="store_true", help="never deliver webhooks")
    parser.add_argument("--random-seed", type=int, help="seed of the fault dice (reproducible runs)")


def _outage(text: str) -> OutageWindow:
    start, _, end = text.partition(":")
    try:
        return OutageWindow(start_seconds=float(start), end_seconds=float(end))
    except ValueError:
        raise SystemExit(f"--outage {text!r}: expected START:END in seconds, e.g. 10:40") from None


def config_from_args(ns: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        seed_path=ns.seed, include_demo_seed=not ns.no_demo_seed, waste_codes_path=ns.waste_codes,
        group_companies=ns.group_companies, group_token=ns.group_token,
        rate_limit=ns.rate_limit, rate_window_seconds=ns.rate_window,
        faults=FaultConfig(error_probability=ns.error_probability,
                           drop_after_commit_probability=ns.drop_after_commit_probability,
                           latency_ms=ns.latency_ms, outages=[_outage(o) for o in ns.outage],
                           force_429_count=ns.force_429),
        admin_enabled=ns.admin, sqlite_path=ns.sqlite, webhooks=WebhookConfig(enabled=not ns.no_webhooks),
        random_seed=ns.random_seed,
    )


EX_UNAVAILABLE = 69


def main(argv: list[str] | None = None, prog: str = "td-emulator") -> None:
    """Parse the flags and serve until interrupted; exit 69 when the server stack is not installed."""
    try:
        from .server import run
    except ModuleNotFoundError as exc:
        print(f"{prog}: {exc.name} is not installed; the emulator needs its extra: "
              "pip install 'trackdechets-connector[emulator]'", file=sys.stderr)
        raise SystemExit(EX_UNAVAILABLE) from None
    parser = argparse.ArgumentParser(prog=prog, description="A local Trackdéchets (GraphQL API emulator)")
    add_arguments(parser)
    ns = parser.parse_args(argv)
    run(ns.host, ns.port, config_from_args(ns))
