"""What the steps share: the state store, the bound mappings, the client and the run options."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from connector.domain.kinds import BsdKind
from connector.engine.companies import CompanyDirectory
from connector.sources.base import Source, SourceRecord
from connector.state.store import StateStore

__all__ = ["Binding", "MappingLike", "Pipeline", "PipelineOptions", "mapping_version"]


class MappingLike(Protocol):
    """What the engine needs from a compiled mapping (read-only: ``CompiledMapping`` is frozen)."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def kind(self) -> BsdKind: ...

    @property
    def seal(self) -> bool: ...

    def apply(self, record: SourceRecord) -> dict[str, Any]: ...

    def required_columns(self) -> set[str]: ...

    def check_columns(self, available: Sequence[str]) -> list[str]: ...


def mapping_version(path: Path) -> str:
    """Hash of the mapping file: a rejected record is re-evaluated when its mapping changes."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "unknown"


@dataclass
class Binding:
    """A compiled mapping bound to its open source."""

    mapping: MappingLike
    source: Source
    version: str = ""
    columns: frozenset[str] = frozenset()
    """The columns the mapping reads, computed once (checked against every record's own columns)."""

    def __post_init__(self) -> None:
        if not self.version:
            self.version = mapping_version(Path(self.mapping.path))
        self.columns = frozenset(self.mapping.required_columns())


@dataclass
class PipelineOptions:
    max_creations_per_run: int = 1000
    dry_run: bool = False
    track_overlap_seconds: float = 300.0
    writeback_refresh_seconds: float = 21600.0
    """Every record is written back again this often (0: never): lost or re-inserted rows converge."""
    reconcile_grace_seconds: float = 35.0
    """An in-doubt create is looked up only once the request that carried it cannot still run."""
    push_chunk: int = 5
    """Operations per HTTP request (the server's transport-batching cap)."""
    due_page: int = 50
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    auth_pause_seconds: float = 60.0
    companies_refresh_seconds: float = 3600.0
    """The token's company list is read again when this old (see engine.companies)."""
    companies_recheck_seconds: float = 30.0
    """A record naming no known company has the list read again if it is at least this old."""
    companies_page_size: int = 500
    """``myCompanies`` page size: the platform's cap on ``first``."""


@dataclass
class Pipeline:
    store: StateStore
    bindings: Sequence[Binding]
    client: Any = None
    """A ``TrackdechetsClient``; None for commands that never talk to Trackdéchets."""
    options: PipelineOptions = field(default_factory=PipelineOptions)
    log: Any = field(default_factory=lambda: structlog.get_logger("connector"))
    progress: Callable[[str, int], None] | None = None
    """Called with (step, records done) as work advances; ``sync --once`` draws a bar with it."""
    schema: Any = None
    """The target's GraphQL schema: when set, ingest validates every create document against it."""
    paused_until: datetime | None = None
    companies: CompanyDirectory = field(default_factory=CompanyDirectory)
    """The token's companies, read and refreshed by ``engine.companies``."""
    auth_failure: str | None = None
    """Why pushing is paused: the refused token and where it came from."""
    token_origin: str = "the configured token"
    """Where the token came from (a variable, a file...), for the message when it is refused."""

    @property
    def my_sirets(self) -> list[str] | None:
        """The token's SIRETs and VAT numbers as last read; None before the first read."""
        known = self.companies.org_ids
        return None if known is None else sorted(known)


    def advance(self, step: str, done: int) -> None:
        if self.progress is not None and done:
            self.progress(step, done)

    def binding(self, name: str) -> Binding | None:
        for b in self.bindings:
            if b.mapping.name == name:
                return b
        return None

    @property
    def mappings(self) -> Mapping[str, MappingLike]:
        return {b.mapping.name: b.mapping for b in self.bindings}
