"""One error tree for the whole connector.

Two axes: the phase that raised it (config, mapping, source, Trackdéchets, state) and what to do
next (retry later, reject this record, stop everything). Errors carry their context as attributes
so that logs can print them as key/values; ``str()`` is the operator's message and never contains a
secret.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


# --- what to do next -------------------------------------------------------------------------


class Retriable(ConnectorError):
    """A transient fault: the same action may succeed later."""


class PermanentForRecord(ConnectorError):
    """This record (with this payload) can never succeed; reject it visibly, keep the others going."""


class Fatal(ConnectorError):
    """Nothing can go on until a person acts (bad config, revoked token...)."""


# --- by phase --------------------------------------------------------------------------------


class ConfigError(Fatal):
    """Settings are invalid or missing. The CLI exits with status 78 (EX_CONFIG)."""

    def __init__(self, message: str, problems: list[str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.problems = problems or [message]

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class UsageError(ConfigError):
    """A command-line argument names something that does not exist (exit status 2, as argparse)."""


class MappingError(ConfigError):
    """A mapping file cannot be loaded or compiled; every problem is listed at once."""


class RecordError(PermanentForRecord):
    """One source record cannot be mapped: names the record, the field and the reason."""

    def __init__(self, message: str, *, field: str | None = None, column: str | None = None,
                 **context: Any) -> None:
        super().__init__(message, field=field, column=column, **context)
        self.field = field
        self.column = column


class SourceError(Retriable):
    """The business system could not be read or written; retried on the next pass."""


class StateError(Fatal):
    """The state store is unusable (schema too old, file unwritable...)."""


class StateNotTrusted(ConnectorError):
    """This state store is not the one that sent the source's records (deleted, replaced, foreign).

    Raised by the push step after it sent everything but creates: a create now could duplicate a
    BSD the lost store had made. Not :class:`Fatal`: ingest, tracking and write-back go on, and
    ``td-connector rebuild-state`` lifts it.
    """


class StepFailed(ConnectorError):
    """A step did all the work it could but failed for a whole source or target.

    Row-level problems never raise it. ``causes`` are one-line operator messages, each saying what
    failed and what to do; ``counts`` is what the step did meanwhile (the other mappings go on).
    """

    def __init__(self, step: str, causes: list[str], counts: dict[str, int] | None = None) -> None:
        super().__init__("; ".join(causes), step=step)
        self.step = step
        self.causes = causes
        self.counts = dict(counts or {})
