"""CSV drop folder: the files an ERP exports, read once each, moved aside, answered by receipts.

A file is read only once it is *quiet*: its own last change (the later of its modification and
status-change times) is at least ``stable_seconds`` old, so a one-shot command judges it as well as
the daemon does. What it looked like then (size, times, inode) is checked again after reading and
before moving: a file that changed meanwhile stays where it is and is read again whole once quiet
(its rows already ingested are recognised by the engine's (mapping, key, payload hash) dedupe).

The checkpoint remembers the identity (name, size, SHA-256) of files already ingested, so an
identical re-drop produces nothing new, and the line reached inside the current file, so a crash
replays at most one batch. Files move only in :meth:`CsvFolderSource.acknowledge`, after the
engine committed what was read from them.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from connector.errors import SourceError
from connector.logs import redact
from connector.sources.base import RowProblem, SourceBatch, SourceCheck, WriteBack
from connector.sources.csv_rows import CsvFileReader, FileRejected, RowBatch
from connector.sources.csv_text import FileFacts, inspect_file
from connector.sources.receipts import receipt_path, update_receipt
from connector.sources.safe_files import (
    Refused,
    UnsafeEntry,
    inside,
    move_refused,
    scan,
    write_text_nofollow,
)
from connector.sources.specs import CsvSourceSpec

__all__ = ["CsvFolderSource", "SkippedFile"]

log = structlog.get_logger(__name__)

_COMPANIONS = (".done", ".ok")
_DONE_LIMIT = 500
"""Identities kept in the checkpoint; an older re-drop is read again and deduped by the engine."""
_UNFINISHED_FACTOR = 5
"""Quiet periods a file without a final line end waits before it is read as it is."""


@dataclass(frozen=True)
class SkippedFile:
    """A file of the drop folder not read (yet), and why, in words an operator acts on."""

    name: str
    reason: str


@dataclass(frozen=True)
class _Snapshot:
    """What a file looked like when it was judged quiet; any change makes it another file."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Snapshot:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    @property
    def last_change(self) -> float:
        """Seconds since the epoch of the last write (or of a copy tool setting the times back)."""
        return max(self.mtime_ns, self.ctime_ns) / 1e9


def _snapshot(path: Path) -> _Snapshot | None:
    try:
        return _Snapshot.of(path.lstat())
    except OSError:  # gone (moved by someone else) or unreadable
        return None


@dataclass(frozen=True)
class _Move:
    """What acknowledging a file's last batch does: move it to processed/ or rejected/."""

    path: Path
    to: str
    note: str | None = None
    error: str | None = None
    snapshot: _Snapshot | None = None
    """The file as it was judged quiet: if it changed since, it is not moved."""
    refused: bool = False
    """Not a regular file: moved as it is (a link, not its target), never read."""


class CsvFolderSource:
    """Reads the stable CSV files of a drop folder, oldest first."""

    def __init__(self, spec: CsvSourceSpec, *, base_dir: Path, mapping_name: str,
                 clock: Callable[[], float] = time.time) -> None:
        """``clock``: wall-clock seconds since the epoch, compared with the files' own times."""
        self.spec = spec
        self.name = mapping_name
        folder = Path(spec.folder)
        self.folder = folder if folder.is_absolute() else base_dir / folder
        self._clock = clock
        self._skipped: dict[str, str] = {}
        self._announced: dict[str, str] = {}
        """File name → kind of the reason last logged for it (logged again when it changes)."""
        self._receipts_lock = threading.Lock()
        self._refused: list[Refused] = []

    def _sub(self, name: str) -> Path:
        return inside(self.folder, Path(name))

    def columns(self) -> list[str] | None:
        return None

    def check(self) -> SourceCheck:
        """What ``td-connector check`` says of this folder (see connector.sources.checks)."""
        from connector.sources.checks import check_csv_folder

        return check_csv_folder(self)

    # --- which files ------------------------------------------------------------------------

    def _companions(self, path: Path) -> list[Path]:
        names = {path.name + c for c in _COMPANIONS} | {path.stem + c for c in _COMPANIONS}
        return [path.with_name(n) for n in sorted(names) if path.with_name(n).exists()]

    def stable_files(self) -> list[Path]:
        """Files matching the pattern that nobody is still writing, oldest first."""
        return [path for path, _ in self._scan()]

    def skipped_files(self) -> list[SkippedFile]:
        """Files of the last pass that were not read, with the reason (for ``preview``, ``check``)."""
        return [SkippedFile(name, reason) for name, reason in sorted(self._skipped.items())]

    def _quiet_reason(self, snap: _Snapshot, now: float) -> str | None:
        """Why a file is not quiet yet, or None when it is."""
        quiet = self.spec.stable_seconds
        if quiet <= 0:
            return None
        age = now - snap.last_change
        if age >= quiet:
            return None
        if age < -1:  # a file server's clock ahead of ours: it waits until ours passes it
            return (f"modified {-age:.0f} s in the future (its clock is ahead of this machine's), "
                    f"quiet period {quiet:g} s")
        return f"modified {max(age, 0):.0f} s ago, quiet period {quiet:g} s"

    def _unfinished(self, snap: _Snapshot) -> str | None:
        """A quiet file whose last line has no line end: a buffered writer cut mid-line and paused?

        It waits ``_UNFINISHED_FACTOR`` quiet periods before being read as it is (an export
        that simply lacks a final line end is then read; a truly cut line is reported).
        """
        limit = self.spec.stable_seconds * _UNFINISHED_FACTOR
        age = self._clock() - snap.last_change
        if limit <= 0 or age >= limit:
            return None
        return (f"its last line has no line end (a writer stopped mid-line?); modified {max(age, 0):.0f} s "
                f"ago, read as it is after {limit:g} s without change")

    def _skip(self, name: str, reason: str) -> None:
        self._skipped[name] = reason
        kind = reason.split(" ", 1)[0]
        if self._announced.get(name) != kind:
            log.info("csv_file_waiting", mapping=self.name, file=name, reason=reason)
            self._announced[name] = kind

    def _scan(self) -> list[tuple[Path, _Snapshot]]:
        if not self.folder.is_dir():
            raise SourceError(f"drop folder {self.folder} does not exist", folder=str(self.folder))
        now = self._clock()
        ready: list[tuple[int, str, Path, _Snapshot]] = []
        skipped: dict[str, str] = {}
        entries, self._refused = scan(self.folder, self.spec.pattern)
        for entry in entries:
            name = entry.name
            try:
                snap = _Snapshot.of(entry.stat(follow_symlinks=False))
            except OSError:  # gone between listing and stat
                continue
            path = Path(entry.path)
            if self._companions(path):
                ready.append((snap.mtime_ns, name, path, snap))
                continue
            if self.spec.require_done_file:
                skipped[name] = "waiting for its .done or .ok companion file (require_done_file = true)"
                continue
            reason = self._quiet_reason(snap, now)
            if reason is None:
                ready.append((snap.mtime_ns, name, path, snap))
            else:
                skipped[name] = reason
        listed = set(skipped) | {name for _, name, _, _ in ready}
        self._announced = {n: k for n, k in self._announced.items() if n in listed}
        self._skipped = {}
        for name, reason in skipped.items():
            self._skip(name, reason)  # logged once per file, not at every poll
        return [(p, snap) for _, _, p, snap in sorted(ready)]

    def _changed_since(self, path: Path, snap: _Snapshot, when: str) -> bool:
        """True (and said) when the file is no longer what was judged quiet."""
        now = _snapshot(path)
        if now == snap:
            return False
        what = "disappeared" if now is None else (
            f"changed {when} (size {snap.size} → {now.size} bytes)" if now.size != snap.size
            else f"changed {when} (same size, rewritten)")
        reason = f"{what}: not moved; read again whole once quiet for {self.spec.stable_seconds:g} s"
        log.warning("csv_file_changed_while_read", mapping=self.name, file=path.name, reason=reason)
        if now is not None:
            self._skipped[path.name] = reason
        return True

    # --- reading ----------------------------------------------------------------------------

    def read(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        done: dict[str, str] = dict((checkpoint or {}).get("done", {}))
        current = (checkpoint or {}).get("current") or {}
        scanned = self._scan()
        for refused in self._refused:
            yield self._refuse(refused.path, refused.reason)
        for path, snap in scanned:
            try:
                facts = inspect_file(path, self.spec.encoding)
            except UnsafeEntry as exc:  # swapped for a link or a FIFO since the listing
                yield self._refuse(path, str(exc))
                continue
            except OSError as exc:  # vanished or locked by the writer: try again next pass
                log.warning("csv_file_unreadable", file=str(path), error=str(exc))
                continue
            complete = facts.ends_with_newline or facts.size == 0 or self._companions(path)
            unfinished = None if complete else self._unfinished(snap)
            if unfinished is not None:
                self._skip(path.name, unfinished)
                continue
            fid = f"{path.name}|{facts.identity}"
            if fid in done:
                if self._changed_since(path, snap, "while it was hashed"):
                    continue
                to = "processed" if done[fid] == "p" else "rejected"
                note = (f"{path.name}: identical (same name, size and SHA-256 {facts.sha256}) to a file "
                        f"already ingested; nothing was read from it again.\n")
                yield SourceBatch(records=[], checkpoint=_checkpoint(done, None),
                                  ack_token=_Move(path, to, note=note, snapshot=snap))
                continue
            resume = int(current.get("line", 0)) if current.get("file") == fid else 0
            yield from self._read_file(path, facts, fid, done, resume, snap)

    def _refuse(self, path: Path, reason: str) -> SourceBatch:
        """A batch reporting an entry that is not read (its reason names its type, not its content)."""
        log.warning("csv_entry_refused", file=path.name, reason=reason)
        problem = RowProblem(origin=f"{self.folder.name}/{path.name}", reason=reason, unit=path.name)
        return SourceBatch([], [problem], checkpoint=None,
                           ack_token=_Move(path, "rejected", error=reason, refused=True))

    def _read_file(self, path: Path, facts: FileFacts, fid: str, done: dict[str, str],
                   resume: int, snap: _Snapshot) -> Iterator[SourceBatch]:
        reader = CsvFileReader(path, facts, key=self.spec.key, delimiter=self.spec.delimiter,
                               max_field_chars=self.spec.max_field_chars,
                               origin_prefix=f"{self.folder.name}/{path.name}")
        log.info("csv_file_reading", file=path.name, encoding=facts.encoding, size=facts.size,
                 resume_after_line=resume)
        previous: RowBatch | None = None
        try:
            for rb in reader.batches(self.spec.batch_size, resume):
                if previous is not None:
                    yield SourceBatch(previous.records, previous.problems,
                                      checkpoint=_checkpoint(done, {"file": fid, "line": previous.last_line}))
                previous = rb
        except FileRejected as exc:
            if self._changed_since(path, snap, "while it was read"):
                yield SourceBatch([], checkpoint=_checkpoint(done, None))
                return
            reason = redact(str(exc))
            log.warning("csv_file_rejected", file=path.name, reason=reason)
            done[fid] = "r"
            problem = RowProblem(origin=f"{self.folder.name}/{path.name}", reason=reason, unit=path.name)
            yield SourceBatch([], [problem], checkpoint=_checkpoint(done, None),
                              ack_token=_Move(path, "rejected", error=reason, snapshot=snap))
            return
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}", file=str(path)) from exc
        if self._changed_since(path, snap, "while it was read"):
            # The last batch holds the line the writer may have been in the middle of: it is not
            # handed over; the whole file is read again (new identity) once quiet.
            yield SourceBatch([], checkpoint=_checkpoint(done, None))
            return
        done[fid] = "p"
        last = previous or RowBatch()
        yield SourceBatch(last.records, last.problems, checkpoint=_checkpoint(done, None),
                          ack_token=_Move(path, "processed", snapshot=snap))

    # --- after the engine committed --------------------------------------------------------

    def acknowledge(self, batch: SourceBatch) -> None:
        move = batch.ack_token
        if not isinstance(move, _Move) or not os.path.lexists(move.path):
            return
        if move.snapshot is not None and self._changed_since(move.path, move.snapshot, "before it was moved"):
            return  # its identity in the checkpoint is the old content's: the new one is read whole
        target_dir = self._sub(self.spec.processed_folder if move.to == "processed"
                               else self.spec.rejected_folder)
        target = move_refused(move.path, target_dir) if move.refused else _move_aside(move.path, target_dir)
        for companion in self._companions(move.path):
            _move_aside(companion, target_dir)
        if move.error is not None:
            write_text_nofollow(target_dir / f"{target.name}.error.txt",
                                f"{move.path.name} was not read: {redact(move.error)}\n"
                                "Fix the export and drop the file again (a new name is not needed).\n")
        if move.note is not None:
            write_text_nofollow(target_dir / f"{target.name}.note.txt", move.note)
        log.info("csv_file_moved", file=move.path.name, to=str(target))

    def write_back(self, updates: Sequence[WriteBack]) -> None:
        by_unit: dict[str, list[WriteBack]] = defaultdict(list)
        for update in updates:
            by_unit[update.unit or "_no_file"].append(update)
        folder = self._sub(self.spec.receipts_folder)
        with self._receipts_lock:
            for unit, items in by_unit.items():
                try:
                    update_receipt(receipt_path(folder, unit), items, int(self.spec.receipt_mode, 8))
                except OSError as exc:
                    raise SourceError(f"cannot write the receipt of {unit}: {exc}", unit=unit) from exc

    def close(self) -> None:
        self._skipped.clear()
        self._announced.clear()


def _checkpoint(done: dict[str, str], current: dict[str, Any] | None) -> dict[str, Any]:
    kept = dict(list(done.items())[-_DONE_LIMIT:])
    return {"v": 1, "done": kept, "current": current}


def _move_aside(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` atomically, never overwriting a file already there."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidates = [path.name] + [f"{path.stem}.{stamp}.{n}{path.suffix}" for n in range(1, 1000)]
    for name in candidates:
        target = folder / name
        try:
            # Fails if the target exists (no race with another mover); a link is moved, not followed.
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:  # no hard links (some network shares): check, then rename
            if target.exists():
                continue
            os.replace(path, target)
            return target
        path.unlink()
        return target
    raise SourceError(f"cannot find a free name for {path.name} in {folder}", file=str(path))
