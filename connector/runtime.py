"""Assembling a running connector from settings: schema, mappings, sources, store, client.

The CLI commands and the daemon all start here, so that ``check`` validates exactly what
``run`` would use.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from graphql import GraphQLSchema
from sqlalchemy.engine import make_url

from connector import __version__
from connector.engine.context import Binding, Pipeline, PipelineOptions
from connector.engine.lookup_refresh import lookup_problems
from connector.errors import ConfigError, MappingError, SourceError
from connector.failures import token_origin
from connector.mapping.loading import load_mappings
from connector.settings import Settings
from connector.sources import open_source
from connector.state.store import StateStore, open_state_store
from connector.trackdechets.client import ResponseInfo, TrackdechetsClient
from connector.trackdechets.pacing import Pacer
from connector.trackdechets.retry import RetryPolicy
from connector.trackdechets.schema import load_target_schema

__all__ = ["Runtime", "build_client", "build_runtime", "token_of"]

log = structlog.get_logger("connector")


def token_of(settings: Settings) -> str | None:
    """The token, without the spaces and line ends a copy-paste or ``echo`` leaves around it."""
    token = settings.trackdechets.token
    return token.get_secret_value().strip() if token is not None else None


def build_client(settings: Settings, **overrides: Any) -> TrackdechetsClient:
    td = settings.trackdechets
    pacer = Pacer(limit=td.rate_limit_per_minute, window=td.rate_window_seconds, share=td.rate_share)
    retry = RetryPolicy(
        max_attempts=settings.retry.max_attempts,
        initial_backoff=settings.retry.initial_backoff_seconds,
        max_backoff=settings.retry.max_backoff_seconds,
    )
    token = token_of(settings)
    if not token:
        raise ConfigError(
            "no Trackdéchets token: set TDC_TRACKDECHETS__TOKEN, trackdechets.token_file, or a "
            "systemd credential named td-token"
        )
    return TrackdechetsClient(
        td.url,
        token,
        timeout=td.timeout_seconds,
        pacer=pacer,
        retry=retry,
        user_agent=f"trackdechets-connector/{__version__}",
        **overrides,
    )


@dataclass
class Runtime:
    settings: Settings
    schema: GraphQLSchema
    store: StateStore
    client: TrackdechetsClient | None
    pipeline: Pipeline
    problems: list[str] = field(default_factory=list)
    scratch: Path | None = None
    """A dry run's copy of the state store (removed on close): a dry run writes nothing anywhere."""

    def close(self) -> None:
        for binding in self.pipeline.bindings:
            try:
                binding.source.close()
            except Exception as exc:  # closing must not hide the real outcome
                log.warning("source_close_failed", mapping=binding.mapping.name, error=str(exc))
        if self.client is not None:
            self.client.close()
        self.store.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def mapping_globs(settings: Settings, config_dir: Path) -> list[str]:
    out = []
    for pattern in settings.mappings.paths:
        path = Path(pattern).expanduser()
        out.append(str(path if path.is_absolute() else config_dir / path))
    return out


def build_runtime(
    settings: Settings,
    config_dir: Path,
    *,
    offline: bool = False,
    dry_run: bool = False,
    on_response: Callable[[ResponseInfo], None] | None = None,
) -> Runtime:
    """Everything ``run`` needs, validated; every mapping problem is reported at once."""
    state_dir = Path(settings.state.dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    client = None if offline else build_client(settings, on_response=on_response)
    post = (lambda query, variables: client.query(query, variables)) if client is not None else None
    schema = load_target_schema(
        post,
        cache_dir=state_dir / "schema-cache",
        max_age_hours=settings.trackdechets.schema_cache_hours,
        url=settings.trackdechets.url,
    )
    mappings = load_mappings(mapping_globs(settings, config_dir), schema, base_dir=config_dir)
    if not mappings:
        raise MappingError(
            "no mapping file found", problems=[f"mappings.paths: no file matches {settings.mappings.paths}"]
        )
    bindings: list[Binding] = []
    problems: list[str] = []
    for mapping in mappings:
        source = open_source(
            mapping.source,
            base_dir=Path(mapping.path).parent,
            mapping_name=mapping.name,
            state_dir=state_dir / "sources",
        )
        try:
            columns = source.columns()
        except SourceError as exc:
            # The business system is down now: not a configuration error. Ingest fails with the
            # cause (and retries) until it is back; `check` says so too.
            log.warning("source_unreachable", mapping=mapping.name, error=str(exc))
            columns = None
        if columns is not None:
            problems.extend(mapping.check_columns(columns))
        binding = Binding(mapping, source)
        problems.extend(lookup_problems(binding))
        bindings.append(binding)
    if problems:
        for binding in bindings:
            binding.source.close()
        raise MappingError("mappings do not match their sources", problems=problems)
    dry_run = dry_run or settings.safety.dry_run
    scratch = Path(tempfile.mkdtemp(prefix="td-connector-dry-run-")) if dry_run else None
    store = _dry_run_store(settings.state.url, scratch) if scratch else open_state_store(settings.state.url)
    options = PipelineOptions(
        max_creations_per_run=settings.safety.max_creations_per_run,
        dry_run=dry_run,
        track_overlap_seconds=settings.schedule.track_overlap_seconds,
        companies_refresh_seconds=settings.schedule.companies_refresh_seconds,
        writeback_refresh_seconds=settings.schedule.writeback_refresh_seconds,
        reconcile_grace_seconds=settings.trackdechets.timeout_seconds + 5,
        initial_backoff_seconds=settings.retry.initial_backoff_seconds,
        max_backoff_seconds=settings.retry.max_backoff_seconds,
    )
    pipeline = Pipeline(store=store, bindings=bindings, client=client, options=options, schema=schema)
    pipeline.token_origin = token_origin(settings.trackdechets.token_file)
    return Runtime(settings, schema, store, client, pipeline, scratch=scratch)


def _dry_run_store(url: str, scratch: Path) -> StateStore:
    """A copy of the state store to work on: what a dry run ingests and decides is thrown away.

    SQLite is copied with its backup API (consistent even while a daemon writes). Another state
    store cannot be copied here: the dry run starts from an empty one, and says so.
    """
    target = scratch / "state.db"
    parsed = make_url(url)
    source = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if source and source != ":memory:" and Path(source).exists():
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    elif parsed.get_backend_name() != "sqlite":
        log.warning(
            "dry_run_empty_state",
            reason="the state store is not SQLite: the dry run works on an empty copy, so every "
            "record looks new",
        )
    return open_state_store(f"sqlite:///{target}")
