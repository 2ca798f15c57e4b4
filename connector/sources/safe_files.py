"""Opening what lands in a drop folder without trusting it.

Whoever can write the drop folder can put there a symbolic link to a file the connector may read
and they may not (the token's credential file, ``/etc/shadow``), a FIFO that blocks a reader
forever, a device, a directory. The connector reads only *regular files directly inside the
folder*, and proves it at the moment of reading: the entry is opened relative to the folder with
``O_NOFOLLOW`` (a symbolic link fails to open), ``O_NONBLOCK`` (a FIFO swapped in after listing
does not block) and its type is checked with ``fstat`` on the open descriptor, so a swap between
listing and opening cannot smuggle anything in. Refused entries are moved aside unread; their
reason names the entry's type, never its content nor where a link points.

Files the connector writes beside them (``rejected/*.error.txt``) are created the same way: an
existing symbolic link at that name is not followed.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ALLOWED",
    "Refused",
    "UnsafeEntry",
    "inside",
    "move_refused",
    "open_regular",
    "scan",
    "write_text_nofollow",
]

ALLOWED = "the connector reads only regular files directly inside the drop folder"

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnsafeEntry(OSError):
    """The entry is not a regular file inside the folder; its content was not read."""


@dataclass(frozen=True)
class Refused:
    """A folder entry matching the pattern that is not read, and why (its type only)."""

    path: Path
    reason: str


def _kind(mode: int) -> str | None:
    """What the entry is when it is not a regular file, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def refusal(mode: int) -> str | None:
    """The operator's reason for refusing an entry of this ``st_mode`` (None: a regular file)."""
    kind = _kind(mode)
    return None if kind is None else f"refused unread: it is {kind}; {ALLOWED}"


def scan(folder: Path, pattern: str) -> tuple[list[os.DirEntry[str]], list[Refused]]:
    """Entries of ``folder`` matching ``pattern`` (case-insensitive, dot-files and folders skipped),
    split into regular files and refused entries (links, FIFOs, sockets, devices). Types come from
    ``lstat``: links are never followed."""
    files: list[os.DirEntry[str]] = []
    refused: list[Refused] = []
    pattern = pattern.lower()
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not fnmatch.fnmatch(name.lower(), pattern):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:  # gone since listing
                continue
            if stat.S_ISDIR(mode):  # a folder (processed/ itself, with pattern "*"): never read, left alone
                continue
            reason = refusal(mode)
            if reason is None:
                files.append(entry)
            else:
                refused.append(Refused(Path(entry.path), reason))
    return files, refused


def inside(folder: Path, sub: Path) -> Path:
    """``folder / sub`` for a folder the connector writes into (``processed/``, ``rejected/``,
    ``receipts/``), refused when it is a symbolic link: whoever can write the drop folder could
    otherwise point it at the state directory. An absolute setting is the operator's and trusted."""
    if sub.is_absolute():
        return sub
    path = folder / sub
    if ".." in sub.parts or any((folder / Path(*sub.parts[: i + 1])).is_symlink()
                                for i in range(len(sub.parts))):
        raise UnsafeEntry(f"{path} is a symbolic link or leaves the drop folder: the connector writes "
                          "only into real folders inside it (give an absolute path to write elsewhere)")
    return path


def _open_in(folder: Path, name: str, flags: int, mode: int = 0o600) -> int:
    if not name or "/" in name or name in (".", ".."):
        raise UnsafeEntry(f"{name!r} is not a plain file name; {ALLOWED}")
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the last component is a symbolic link
                raise UnsafeEntry(f"{name}: refused unread: it is a symbolic link; {ALLOWED}") from None
            raise
    finally:
        os.close(dir_fd)


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` (a name directly inside its folder) for reading, only if it is a regular file.

    Raises :class:`UnsafeEntry` (an ``OSError``) for a symbolic link, FIFO, device or directory,
    without reading a byte of it.
    """
    fd = _open_in(path.parent, path.name, os.O_RDONLY | os.O_NONBLOCK)
    try:
        reason = refusal(os.fstat(fd).st_mode)
        if reason is not None:
            raise UnsafeEntry(f"{path.name}: {reason}")
        os.set_blocking(fd, True)
        return io.open(fd, "rb", closefd=True)  # noqa: UP020 (an fd, not a path)
    except BaseException:
        os.close(fd)
        raise


def write_text_nofollow(path: Path, text: str, mode: int = 0o640) -> None:
    """Create or replace the regular file ``path`` with ``text``; a symbolic link there is refused."""
    fd = _open_in(path.parent, path.name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, mode)
    with _closing_fd(fd):
        if refusal(os.fstat(fd).st_mode) is not None:
            raise UnsafeEntry(f"{path}: not a regular file, not written")
        os.write(fd, text.encode("utf-8"))


@contextmanager
def _closing_fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def move_refused(path: Path, folder: Path) -> Path:
    """Move the entry ``path`` itself (never what a link points to) into ``folder``, under a free name.

    A hard link of the entry itself (``linkat`` without following) takes the free name without
    overwriting anything; where that is not possible (a directory, a link owned by another user
    under ``fs.protected_hardlinks``) ``rename``, which also acts on the link, not its target.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        target = folder / (path.name if n == 0 else f"{path.name}.{n}")
        if os.path.lexists(target):
            continue
        try:
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:  # a directory, or another user's link (fs.protected_hardlinks)
            os.rename(path, target)
            return target
        path.unlink()
        return target
    raise UnsafeEntry(f"no free name for {path.name} in {folder}")
