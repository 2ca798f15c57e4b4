"""One-line causes for failures of a whole source or target, each saying what to do.

The steps isolate failures per record, per file and per kind; what is left is a source that cannot
be read at all, a target that refuses every write, a token that is refused. Those make the step
fail (``sync --once`` exits non-zero, ``/healthz`` turns degraded) with a message built here, so
that the same failure reads the same in the logs, in ``/healthz``, in ``status`` and in the
operations guide's troubleshooting table.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping

from sqlalchemy.exc import SQLAlchemyError

from connector.trackdechets.errors import Unauthenticated

__all__ = ["TOKEN_VARIABLE", "source_failure", "token_failure", "token_origin", "writeback_failure"]

TOKEN_VARIABLE = "TDC_TRACKDECHETS__TOKEN"


def token_origin(token_file: object | None, environ: Mapping[str, str] | None = None) -> str:
    """Where the token in use came from, in the words of the configuration guide."""
    env = os.environ if environ is None else environ
    if env.get(TOKEN_VARIABLE):
        return f"the variable {TOKEN_VARIABLE}"
    if token_file is not None:
        return f"the file {token_file} (trackdechets.token_file)"
    if env.get("CREDENTIALS_DIRECTORY"):
        return "the systemd credential td-token"
    return "trackdechets.token in the configuration file"


def token_failure(exc: Unauthenticated, origin: str) -> str:
    return (
        f"Trackdéchets refused the token from {origin} ({exc.message}): put a valid token there "
        "and run again; nothing was sent meanwhile"
    )


def source_failure(mapping: str, mapping_path: str, exc: BaseException, *, writing: bool = False) -> str:
    """Why the source of ``mapping`` could not be read (or, ``writing``, its files moved aside)."""
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EACCES):
        where = os.path.normpath(exc.filename) if exc.filename else "a file or folder"
        action = "write to" if writing else "read"
        return (
            f"mapping {mapping}: permission denied on {where}: let the connector's user {action} it "
            f"(chown/chmod), or correct source.folder in {mapping_path}"
        )
    if isinstance(exc, OSError):
        where = exc.filename or "the drop folder"
        reason = exc.strerror or exc
        return f"mapping {mapping}: {where}: {reason}: fix the folder or its disk, then run again"
    text = _first_line(exc)
    if "does not exist" in text and "folder" in text:
        return f"mapping {mapping}: {text}: create it, or correct source.folder in {mapping_path}"
    if isinstance(exc, SQLAlchemyError) or ("(" in text and "://" in text):
        return (
            f"mapping {mapping}: {text}: check that the database is up and reachable and that "
            f"source.url in {mapping_path} is right"
        )
    return f"mapping {mapping}: {text}: see the log lines before this one; fix the source in {mapping_path}"


def writeback_failure(mapping: str, mapping_path: str, failed: int, error: str, *, receipts: bool) -> str:
    fix = (
        "let the connector's user write to the receipts folder (source.receipts_folder)"
        if receipts
        else f"fix source.writeback.statement in {mapping_path} (`td-connector check` runs it)"
    )
    return (
        f"mapping {mapping}: the write-back failed for all {failed} record(s) ({_first_line(error)}): "
        f"{fix}; the records stay due and are written back on the next pass"
    )


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
