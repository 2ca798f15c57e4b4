"""The ``[source]`` section of a mapping file: where records come from and where statuses go.

Pure data models (pydantic, ``extra="forbid"``); the sources package turns them into readers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CsvSourceSpec", "SourceSpec", "SqlSourceSpec", "SqlWriteBackSpec"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsvSourceSpec(_Spec):
    type: Literal["csv"]
    folder: str
    """Drop folder; relative paths are relative to the mapping file's folder."""
    pattern: str = "*.csv"
    key: list[str]
    """Columns whose values, joined, identify a row across re-drops and corrections."""
    delimiter: str = "auto"
    """``auto`` sniffs ``;`` or ``,``; or give the character."""
    encoding: str = "auto"
    """``auto`` detects UTF-8 (with or without BOM), cp1252 or latin-1; or give the codec."""
    stable_seconds: float = Field(default=60.0, ge=0)
    """Quiet period: a file is read only once its own last change (modification or status-change
    time) is this old, or a .done/.ok companion exists; 0 reads files at once."""
    require_done_file: bool = False
    processed_folder: str = "processed"
    rejected_folder: str = "rejected"
    receipts_folder: str = "receipts"
    receipt_mode: str = Field(default="0640", pattern=r"^0?[0-7]{3}$")
    """Octal permissions of the receipt files (default: the owner writes, the group reads)."""
    batch_size: int = Field(default=500, ge=1)
    """Records handed to the engine (and checkpointed) together."""
    max_field_chars: int = Field(default=10_000, ge=1)
    """A longer value makes its row a problem (a runaway quote or a pasted document)."""


class SqlWriteBackSpec(_Spec):
    """An UPDATE (or INSERT into a status table) run with bound parameters for each record.

    Parameters available: ``:key`` and one ``:key_<column>`` per key column, ``:bsd_id``,
    ``:readable_id``, ``:status``, ``:remote_status``, ``:error``, ``:updated_at``.
    """

    statement: str


class SqlSourceSpec(_Spec):
    type: Literal["sql"]
    url: str
    """SQLAlchemy URL; ``${ENV_VAR}`` is expanded so passwords stay out of the file."""
    table: str | None = None
    query: str | None = None
    """A SELECT instead of a table; must expose the key and change columns."""
    key: list[str]
    mode: Literal["cursor", "flag", "scan"] = "cursor"
    cursor_column: str | None = None
    lag_seconds: float = Field(default=5.0, ge=0)
    """Cursor mode: rows newer than now − lag are read again next time (late commits)."""
    reconcile_seconds: float = Field(default=300.0, ge=0)
    """Cursor mode: every this many seconds, compare the key and cursor value of every row at or
    below the safe point with what was handed over, and read the rows a long transaction
    committed there (found late: logged and counted). 0 turns it off."""
    flag_column: str | None = None
    flag_value: str | None = None
    """Flag mode: rows where ``flag_column = flag_value`` are to be sent."""
    children: dict[str, str] = Field(default_factory=dict)
    """Child name → SELECT with a ``:parent_key`` (or ``:key_<column>``) parameter."""
    batch_size: int = 500
    writeback: SqlWriteBackSpec | None = None


SourceSpec = Annotated[CsvSourceSpec | SqlSourceSpec, Field(discriminator="type")]
