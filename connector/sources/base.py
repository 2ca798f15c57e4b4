"""What every source offers the engine, and the records it hands over.

A source reads the business system in batches and never decides anything about Trackdéchets: the
engine maps, validates and stores. A batch is acknowledged only after the state store committed
its records, so a crash between reading and acknowledging replays the batch, and the state store's
(mapping, key, payload hash) dedupe makes the replay a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "CheckFinding",
    "RowProblem",
    "Source",
    "SourceBatch",
    "SourceCheck",
    "SourceRecord",
    "WriteBack",
]


@dataclass(frozen=True)
class SourceRecord:
    """One business record, as read, before any mapping."""

    key: str
    """Stable identity of the record in its system (key columns joined with ``|``)."""
    values: Mapping[str, Any]
    """Column name → raw value (``str`` from CSV; driver types from SQL)."""
    origin: str
    """Where a person finds it: ``inbox/export_0412.csv:line 12`` or ``table enlevements, id=42``."""
    unit: str | None = None
    """The file (or other unit) the record came from; write-back groups receipts by it."""
    children: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Child rows by child name (packagings, transporters...) for lists inside a BSD."""


@dataclass(frozen=True)
class RowProblem:
    """A row that could not even become a record (bad encoding, NULL key, truncated line...).

    It is never dropped: the engine stores it as a rejected record so that it shows in ``status``
    and in the write-back.
    """

    origin: str
    reason: str
    key: str | None = None
    column: str | None = None
    unit: str | None = None
    raw: Mapping[str, Any] | None = None


@dataclass
class SourceBatch:
    """Records read together, acknowledged together."""

    records: list[SourceRecord]
    problems: list[RowProblem] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    """The source's position after this batch; stored by the engine with the records."""
    ack_token: Any = None
    """Opaque to the engine; passed back to :meth:`Source.acknowledge` (a file to move...)."""
    found_late: int = 0
    """Records of this batch that the source's fast path had missed and a completeness check
    found (a row committed below a SQL cursor's safe point); counted as ``found_late``."""


@dataclass(frozen=True)
class WriteBack:
    """What the connector knows of one record, to be written back into the business system."""

    key: str
    unit: str | None
    bsd_id: str | None
    readable_id: str | None
    status: str
    """The connector's state (``pending``, ``sent``, ``rejected``, ``conflict``...) or the BSD status."""
    remote_status: str | None
    error: str | None
    updated_at: str
    """ISO 8601 time of the last change, with offset."""


@dataclass(frozen=True)
class CheckFinding:
    """One line of ``td-connector check``: ``ok``, ``warn`` (works, but...) or ``fail``."""

    level: Literal["ok", "warn", "fail"]
    message: str


@dataclass
class SourceCheck:
    """What opening a source for real found, and the columns it offers (None when unknown)."""

    findings: list[CheckFinding] = field(default_factory=list)
    columns: list[str] | None = None
    where: str = ""
    """Where the columns were read (``header of inbox/export.csv``), for the mapping's check."""

    def ok(self, message: str) -> None:
        self.findings.append(CheckFinding("ok", message))

    def warn(self, message: str) -> None:
        self.findings.append(CheckFinding("warn", message))

    def fail(self, message: str) -> None:
        self.findings.append(CheckFinding("fail", message))


@runtime_checkable
class Source(Protocol):
    """A business system the connector reads from and writes statuses back to."""

    name: str

    def columns(self) -> list[str] | None:
        """Known column names, to check a mapping before reading (None when only data tells)."""
        ...

    def read(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        """Yield batches of new or changed records since ``checkpoint``; bounded memory."""
        ...

    def acknowledge(self, batch: SourceBatch) -> None:
        """Called once the batch's records are committed in the state store."""
        ...

    def write_back(self, updates: Sequence[WriteBack]) -> None:
        """Write these statuses into the business system; raise SourceError to be retried."""
        ...

    def close(self) -> None: ...
