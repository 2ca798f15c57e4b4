"""The Trackdéchets branch of the error tree, split by what the caller may do next.

The split that matters for exactly-once is between ``NotSent`` (sending again cannot create a
duplicate) and ``InDoubt`` (the server may have executed it: look the BSD up before any resend).
Every error carries the HTTP status, the GraphQL codes, the operation name and the attempt as
attributes, so that logs print them as key/values. Messages quote the server but never the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.errors import ConnectorError, Fatal, PermanentForRecord, Retriable

__all__ = [
    "ClientBug",
    "InDoubt",
    "NotSent",
    "Rejected",
    "TrackdechetsError",
    "Unauthenticated",
]


class TrackdechetsError(ConnectorError):
    """Base of every error raised while talking to Trackdéchets."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        graphql_codes: Sequence[str] = (),
        operation_name: str | None = None,
        attempt: int | None = None,
        transport_error: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            graphql_codes=tuple(graphql_codes),
            operation_name=operation_name,
            transport_error=transport_error,
            **context,
        )
        self.status_code = status_code
        self.graphql_codes = tuple(graphql_codes)
        self.operation_name = operation_name
        self.attempt = attempt
        self.transport_error = transport_error

    def log_fields(self) -> dict[str, Any]:
        """Key/values for a structured log line (no secret is ever stored on an error)."""
        fields: dict[str, Any] = {
            "error": type(self).__name__,
            "status_code": self.status_code,
            "graphql_codes": list(self.graphql_codes),
            "operation": self.operation_name,
            "attempt": self.attempt,
        }
        if self.transport_error:
            fields["transport_error"] = self.transport_error
        return fields

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, "
            f"graphql_codes={list(self.graphql_codes)}, operation_name={self.operation_name!r}, "
            f"attempt={self.attempt})"
        )


class NotSent(TrackdechetsError, Retriable):
    """Safe to send again as is: the server surely did not execute it (or it is a read).

    ``retry_after`` is how long the server asked us to wait, in seconds, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InDoubt(TrackdechetsError, Retriable):
    """The mutation may have been executed and committed: reconcile before sending it again.

    The client never resends these; the engine looks the BSD up first.
    """


class Rejected(TrackdechetsError, PermanentForRecord):
    """The server refused this payload (bad input, forbidden): resending it unchanged is useless.

    ``server_message`` is the platform's own (French) text, to show to the IT team as is;
    ``issues`` the structured validation issues (zod) when the server gave them; ``field_paths``
    the dotted input paths they point at.
    """

    def __init__(
        self,
        message: str,
        *,
        server_message: str = "",
        code: str | None = None,
        issues: Sequence[dict[str, Any]] = (),
        field_paths: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.server_message = server_message
        self.code = code
        self.issues = list(issues)
        self.field_paths = list(field_paths)


class Unauthenticated(TrackdechetsError, Fatal):
    """The token is missing, invalid or revoked: pause every push until a person fixes it."""


class ClientBug(TrackdechetsError, PermanentForRecord):
    """The request itself is malformed (parse, validation, too many operations, body too large).

    Our fault, not the data's nor the server's: resending cannot help. It is permanent for the
    record so that one bad document never blocks the others, and loud enough to be fixed.
    """
