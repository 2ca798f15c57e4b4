"""The ``td-connector`` command.

Exit codes (docs/operations.md): 0 ok; 1 records rejected (row-level) or ``check``/``preview``
found a problem; 2 usage; 69 a step failed for a whole source or target (EX_UNAVAILABLE: a drop
folder missing, a write-back failing on every row, a refused token, a database down), with one
line per cause on stderr; 75 another instance holds the state lock; 78 configuration error
(EX_CONFIG: systemd does not restart on it). Configuration errors print every problem, never a
traceback; any other connector error a command cannot get past is one masked line (69 when a
source or Trackdéchets failed, else 1).

The emulator (package ``td_emulator``) is an optional extra: nothing here imports it, except the
``emulator`` and ``demo`` commands, lazily (exit 69 with how to install it when it is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from connector import __version__
from connector.errors import ConfigError, ConnectorError, SourceError, StepFailed, UsageError
from connector.logs import mask_secrets
from connector.state.lock import InstanceLockedError

__all__ = ["main"]

EX_OK, EX_FAILED, EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 2, 69, 75, 78

EMULATOR_MISSING = (
    "td-connector: the Trackdéchets emulator is not installed ({missing}).\n"
    "It is an optional extra: from a checkout, pip install '.[emulator]' "
    "(or pip install 'trackdechets-connector[emulator]')."
)


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=Path(os.environ["TDC_CONFIG"]) if os.environ.get("TDC_CONFIG") else None,
        help="TOML configuration file (default: $TDC_CONFIG, else settings from TDC_* variables only)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="td-connector",
        description=(
            "Connect a business system (SQL database, CSV drop folder) to Trackdéchets: records become "
            "BSDs exactly once, their statuses come back."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon (every step on its interval)")
    _add_config(run)
    run.add_argument("--dry-run", action="store_true", help="read, map and validate; send nothing")

    sync = sub.add_parser("sync", help="one pass of every step, then a summary")
    _add_config(sync)
    sync.add_argument("--once", action="store_true", required=True, help="one pass (the only mode)")
    sync.add_argument("--dry-run", action="store_true", help="read, map and validate; send nothing")
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")

    check = sub.add_parser("check", help="validate config and mappings, test connectivity and token")
    _add_config(check)
    check.add_argument("--offline", action="store_true", help="skip the connectivity and token test")

    preview = sub.add_parser("preview", help="show the documents N records would produce (nothing sent)")
    _add_config(preview)
    preview.add_argument("--limit", type=int, default=5)
    preview.add_argument("--json", action="store_true", help="one JSON object per line: query, variables")
    preview.add_argument("--mapping", help="only this mapping")
    preview.add_argument("--key", action="append", help="only this record key (repeatable)")

    status = sub.add_parser("status", help="records per state, rejected records, last runs")
    _add_config(status)
    status.add_argument("--json", action="store_true")
    status.add_argument("--top", type=int, default=10)

    retry = sub.add_parser("retry", help="replay rejected records with the current mapping")
    _add_config(retry)
    who = retry.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", action="append", help="record key (repeatable)")
    who.add_argument("--since", help="records rejected since this ISO date")
    who.add_argument("--all-rejected", action="store_true")
    retry.add_argument("--mapping", help="only this mapping")
    retry.add_argument("--dry-run", action="store_true")

    explain = sub.add_parser("explain", help="why one record became what it became (nothing sent)")
    _add_config(explain)
    explain.add_argument("--key", required=True, help="the record key")
    explain.add_argument("--mapping", help="only this mapping")
    explain.add_argument("--json", action="store_true")

    rebuild = sub.add_parser(
        "rebuild-state",
        help="after the state store was lost: adopt the BSDs already on Trackdéchets, then allow creates",
    )
    _add_config(rebuild)
    rebuild.add_argument("--dry-run", action="store_true", help="show what would be adopted; adopt nothing")
    rebuild.add_argument(
        "--since",
        default=None,
        help="kinds found by fingerprint (BSDA, BSDASRI, BSFF, BSPAOH): look at BSDs created since "
        "this ISO date (default: 365 days ago)",
    )

    init = sub.add_parser("init", help="write a commented mapping draft and a config from a CSV or a table")
    from connector.mapping_init import add_arguments as add_init_arguments

    add_init_arguments(init)

    # Its flags belong to the emulator package (an optional extra): everything after the word is
    # handed to td_emulator.cli, so `td-connector emulator --help` shows them when it is installed.
    sub.add_parser("emulator", help="run the local Trackdéchets emulator (extra: emulator)", add_help=False,
                   prefix_chars="\0")

    demo = sub.add_parser("demo", help="the whole pipeline on embedded sample data, no configuration")
    demo.add_argument("--workdir", type=Path, default=None, help="keep the demo files here")
    demo.add_argument("--json-logs", action="store_true", help="show the daemon's JSON log lines")
    return parser


def _load(args: argparse.Namespace) -> tuple[Any, Path]:
    from connector.logs import configure_logging
    from connector.settings import load_settings

    settings = load_settings(args.config)
    from connector.runtime import token_of

    configure_logging(
        settings.logging.level,
        settings.logging.format,
        secrets=[settings.trackdechets.token, token_of(settings), settings.webhooks.token],
    )
    for warning in settings.warnings:
        structlog.get_logger("connector").warning("config_warning", message=warning)
    config_dir = args.config.expanduser().absolute().parent if args.config else Path.cwd()
    return settings, config_dir


def _print_config_error(exc: ConfigError) -> int:
    if exc.problems == [exc.message]:
        print(f"td-connector: configuration error: {exc.message}", file=sys.stderr)
        return EX_CONFIG
    print(f"td-connector: configuration error: {exc.message}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EX_CONFIG


def cmd_run(args: argparse.Namespace) -> int:
    from connector.service import run_daemon
    from connector.state.lock import instance_lock

    settings, config_dir = _load(args)
    with instance_lock(Path(settings.state.dir)):
        return run_daemon(settings, config_dir, dry_run=args.dry_run, config_path=args.config)


def cmd_sync(args: argparse.Namespace) -> int:
    from connector.runtime import build_runtime
    from connector.service import sync_once
    from connector.state.lock import instance_lock

    settings, config_dir = _load(args)
    with instance_lock(Path(settings.state.dir)):
        runtime = build_runtime(settings, config_dir, dry_run=args.dry_run)
        try:
            summary = sync_once(runtime, threading.Event(), progress=sys.stderr.isatty() and not args.json)
        finally:
            runtime.close()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        from connector.reports import print_sync_summary

        print_sync_summary(summary)
    for cause in summary["failures"]:
        print(f"td-connector: sync failed: {cause}", file=sys.stderr)
    if summary["failures"]:
        return EX_UNAVAILABLE
    return EX_OK if summary["ok"] else EX_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    from connector.check import check

    settings, config_dir = _load(args)
    return check(settings, config_dir, offline=args.offline)


def cmd_preview(args: argparse.Namespace) -> int:
    from connector.preview import preview

    settings, config_dir = _load(args)
    return preview(
        settings, config_dir, limit=args.limit, as_json=args.json, only=args.mapping, keys=args.key
    )


def cmd_status(args: argparse.Namespace) -> int:
    from connector.reports import failing_steps, print_status
    from connector.state.store import open_state_store

    settings, _ = _load(args)
    store = open_state_store(settings.state.url)
    try:
        report = store.report(top=args.top)
        failing = failing_steps(store)
    finally:
        store.close()
    print_status(report, as_json=args.json, failing=failing)
    return EX_OK


def cmd_retry(args: argparse.Namespace) -> int:
    from connector.service import retry_rejected
    from connector.state.lock import instance_lock

    settings, config_dir = _load(args)
    with instance_lock(Path(settings.state.dir)):
        return retry_rejected(
            settings,
            config_dir,
            keys=args.key,
            since=args.since,
            all_rejected=args.all_rejected,
            mapping=args.mapping,
            dry_run=args.dry_run,
        )


def cmd_rebuild_state(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from connector.engine.rebuild import print_rebuild_report, rebuild_state
    from connector.runtime import build_runtime
    from connector.state.lock import instance_lock

    settings, config_dir = _load(args)
    since = datetime.now(UTC) - timedelta(days=365)
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"--since: {args.since!r} is not an ISO date") from exc
        since = since if since.tzinfo else since.astimezone()
    with instance_lock(Path(settings.state.dir)):
        runtime = build_runtime(settings, config_dir)
        try:
            report = rebuild_state(runtime.pipeline, since=since, dry_run=args.dry_run)
        finally:
            runtime.close()
    print_rebuild_report(report)
    return EX_OK if report.dry_run or report.trusted else EX_FAILED


def cmd_explain(args: argparse.Namespace) -> int:
    from connector.explain import explain

    settings, config_dir = _load(args)
    return explain(settings, config_dir, key=args.key, mapping=args.mapping, as_json=args.json)


def cmd_init(args: argparse.Namespace) -> int:
    from connector.mapping_init import run_init

    return run_init(args)


def emulator_missing() -> str | None:
    """None when the emulator and its server stack import, else the name of what is missing."""
    try:
        import td_emulator.server  # noqa: F401
    except ModuleNotFoundError as exc:
        return exc.name or str(exc)
    return None


def cmd_emulator(args: argparse.Namespace) -> int:
    missing = emulator_missing()
    if missing is not None:
        print(EMULATOR_MISSING.format(missing=missing), file=sys.stderr)
        return EX_UNAVAILABLE
    from td_emulator.cli import main as emulator_main

    emulator_main(list(args.emulator_args), prog="td-connector emulator")
    return EX_OK


def cmd_demo(args: argparse.Namespace) -> int:
    missing = emulator_missing()
    if missing is not None:
        print(EMULATOR_MISSING.format(missing=missing), file=sys.stderr)
        return EX_UNAVAILABLE
    from connector.demo.run import run_demo

    return run_demo(workdir=args.workdir, json_logs=args.json_logs)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "sync": cmd_sync,
    "check": cmd_check,
    "preview": cmd_preview,
    "status": cmd_status,
    "retry": cmd_retry,
    "explain": cmd_explain,
    "init": cmd_init,
    "rebuild-state": cmd_rebuild_state,
    "emulator": cmd_emulator,
    "demo": cmd_demo,
}


def _exit_status(exc: ConnectorError) -> int:
    """69 when a whole source or target failed (the business system, Trackdéchets), else 1."""
    from connector.trackdechets.errors import TrackdechetsError

    return EX_UNAVAILABLE if isinstance(exc, SourceError | TrackdechetsError | StepFailed) else EX_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "emulator":
        args.emulator_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"td-connector {args.command}: {exc.message}", file=sys.stderr)
        for problem in exc.problems if exc.problems != [exc.message] else []:
            print(f"  - {problem}", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        return _print_config_error(exc)
    except InstanceLockedError as exc:
        print(f"td-connector: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except ConnectorError as exc:
        # A failure the command could not get past (the source or the API unreachable, the state
        # store unusable): one line, masked, no traceback.
        print(mask_secrets(f"td-connector {args.command}: {exc.message}"), file=sys.stderr)
        return _exit_status(exc)
    except KeyboardInterrupt:
        return 130
