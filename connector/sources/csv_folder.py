"""CSV drop folder: the files an ERP exports, read once each, moved aside, answered by receipts.

The checkpoint remembers the identity (name, size, SHA-256) of files already ingested, so an
identical re-drop produces nothing new, and the line reached inside the current file, so a crash
replays at most one batch. Files move only in :meth:`CsvFolderSource.acknowledge`, after the
engine committed what was read from them.
"""

from __future__ import annotations

import fnmatch
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
from connector.sources.base import RowProblem, SourceBatch, SourceCheck, WriteBack
from connector.sources.csv_rows import CsvFileReader, FileRejected, RowBatch
from connector.sources.csv_text import FileFacts, inspect_file
from connector.sources.receipts import receipt_path, update_receipt
from connector.sources.specs import CsvSourceSpec

__all__ = ["CsvFolderSource"]

log = structlog.get_logger(__name__)

_COMPANIONS = (".done", ".ok")
_DONE_LIMIT = 500
"""Identities kept in the checkpoint; an older re-drop is read again and deduped by the engine."""


@dataclass(frozen=True)
class _Move:
    """What acknowledging a file's last batch does: move it to processed/ or rejected/."""

    path: Path
    to: str
    note: str | None = None
    error: str | None = None


class CsvFolderSource:
    """Reads the stable CSV files of a drop folder, oldest first."""

    def __init__(self, spec: CsvSourceSpec, *, base_dir: Path, mapping_name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.name = mapping_name
        folder = Path(spec.folder)
        self.folder = folder if folder.is_absolute() else base_dir / folder
        self._clock = clock
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._receipts_lock = threading.Lock()

    def _sub(self, name: str) -> Path:
        sub = Path(name)
        return sub if sub.is_absolute() else self.folder / sub

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
        if not self.folder.is_dir():
            raise SourceError(f"drop folder {self.folder} does not exist", folder=str(self.folder))
        now = self._clock()
        pattern = self.spec.pattern.lower()
        ready: list[tuple[int, str, Path]] = []
        present: set[str] = set()
        for entry in os.scandir(self.folder):
            name = entry.name
            if name.startswith(".") or not entry.is_file() or not fnmatch.fnmatch(name.lower(), pattern):
                continue
            present.add(name)
            stat = entry.stat()
            path = Path(entry.path)
            if self._companions(path):
                ready.append((stat.st_mtime_ns, name, path))
                continue
            if self.spec.require_done_file:
                continue
            state = (stat.st_size, stat.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is None or seen[:2] != state:
                self._seen[name] = (*state, now)
                seen = self._seen[name]
            if now - seen[2] >= self.spec.stable_seconds:
                ready.append((stat.st_mtime_ns, name, path))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return [p for _, _, p in sorted(ready)]

    # --- reading ----------------------------------------------------------------------------

    def read(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        done: dict[str, str] = dict((checkpoint or {}).get("done", {}))
        current = (checkpoint or {}).get("current") or {}
        for path in self.stable_files():
            try:
                facts = inspect_file(path, self.spec.encoding)
            except OSError as exc:  # vanished or locked by the writer: try again next pass
                log.warning("csv_file_unreadable", file=str(path), error=str(exc))
                continue
            fid = f"{path.name}|{facts.identity}"
            if fid in done:
                to = "processed" if done[fid] == "p" else "rejected"
                note = (f"{path.name}: identical (same name, size and SHA-256 {facts.sha256}) to a file "
                        f"already ingested; nothing was read from it again.\n")
                yield SourceBatch(records=[], checkpoint=_checkpoint(done, None),
                                  ack_token=_Move(path, to, note=note))
                continue
            resume = int(current.get("line", 0)) if current.get("file") == fid else 0
            yield from self._read_file(path, facts, fid, done, resume)

    def _read_file(self, path: Path, facts: FileFacts, fid: str, done: dict[str, str],
                   resume: int) -> Iterator[SourceBatch]:
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
            reason = str(exc)
            log.warning("csv_file_rejected", file=path.name, reason=reason)
            done[fid] = "r"
            problem = RowProblem(origin=f"{self.folder.name}/{path.name}", reason=reason, unit=path.name)
            yield SourceBatch([], [problem], checkpoint=_checkpoint(done, None),
                              ack_token=_Move(path, "rejected", error=reason))
            return
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}", file=str(path)) from exc
        done[fid] = "p"
        last = previous or RowBatch()
        yield SourceBatch(last.records, last.problems, checkpoint=_checkpoint(done, None),
                          ack_token=_Move(path, "processed"))

    # --- after the engine committed --------------------------------------------------------

    def acknowledge(self, batch: SourceBatch) -> None:
        move = batch.ack_token
        if not isinstance(move, _Move) or not move.path.exists():
            return
        target_dir = self._sub(self.spec.processed_folder if move.to == "processed"
                               else self.spec.rejected_folder)
        target = _move_aside(move.path, target_dir)
        for companion in self._companions(move.path):
            _move_aside(companion, target_dir)
        if move.error is not None:
            (target_dir / f"{target.name}.error.txt").write_text(
                f"{move.path.name} was not read: {move.error}\n"
                "Fix the export and drop the file again (a new name is not needed).\n", encoding="utf-8")
        if move.note is not None:
            (target_dir / f"{target.name}.note.txt").write_text(move.note, encoding="utf-8")
        self._seen.pop(move.path.name, None)
        log.info("csv_file_moved", file=move.path.name, to=str(target))

    def write_back(self, updates: Sequence[WriteBack]) -> None:
        by_unit: dict[str, list[WriteBack]] = defaultdict(list)
        for update in updates:
            by_unit[update.unit or "_no_file"].append(update)
        folder = self._sub(self.spec.receipts_folder)
        with self._receipts_lock:
            for unit, items in by_unit.items():
                try:
                    update_receipt(receipt_path(folder, unit), items)
                except OSError as exc:
                    raise SourceError(f"cannot write the receipt of {unit}: {exc}", unit=unit) from exc

    def close(self) -> None:
        self._seen.clear()


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
            os.link(path, target)  # fails if the target exists: no race with another mover
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
