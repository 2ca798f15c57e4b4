"""Replace a small text file atomically: a reader sees the old content or the new, never half.

Used by the receipts beside a drop folder and by the state store's identity markers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["replace_text_file"]


def replace_text_file(
    path: Path,
    write: Callable[[TextIO], object],
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    mode: int | None = None,
) -> None:
    """Write through ``write`` into a temporary file beside ``path``, fsync it, then rename it over.

    ``path``'s folder must exist (callers decide which folders they may create). ``mode`` sets the
    file's permissions whatever the umask.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
