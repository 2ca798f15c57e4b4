"""Drop-folder life cycle: stable files only, identity across re-drops, resume, moves, receipts."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from connector.sources import CsvFolderSource, SourceBatch, WriteBack
from connector.sources.specs import CsvSourceSpec


class FakeClock:
    """Wall clock under the test's control, starting at the real time (files carry real times)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: FakeClock | None = None, **spec: object) -> CsvFolderSource:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    options: dict[str, object] = {"stable_seconds": 0, **spec}
    return CsvFolderSource(CsvSourceSpec(type="csv", folder="inbox", key=["id"], **options),  # type: ignore[arg-type]
                           base_dir=tmp_path, mapping_name="m", clock=clock or FakeClock())


def drain(source: CsvFolderSource, checkpoint: dict | None = None, ack: bool = True
          ) -> tuple[list[SourceBatch], dict | None]:
    batches = []
    for batch in source.read(checkpoint):
        batches.append(batch)
        checkpoint = batch.checkpoint
        if ack:
            source.acknowledge(batch)
    return batches, checkpoint


def keys(batches: list[SourceBatch]) -> list[str]:
    return [r.key for b in batches for r in b.records]


def test_growing_file_waits_until_it_is_quiet(tmp_path: Path) -> None:
    clock = FakeClock()
    source = make(tmp_path, clock, stable_seconds=2)
    path = tmp_path / "inbox" / "e.csv"
    path.write_text("id;x\n1;a\n", encoding="utf-8")
    assert keys(drain(source)[0]) == []  # just written
    assert [(f.name, f.reason) for f in source.skipped_files()] == [
        ("e.csv", "modified 0 s ago, quiet period 2 s")]
    clock.now += 1.5
    with path.open("a", encoding="utf-8") as fh:
        fh.write("2;b\n")
    clock.now = time.time() + 1.5
    assert keys(drain(source)[0]) == []  # changed: the quiet period starts again
    clock.now += 0.5
    assert keys(drain(source)[0]) == ["1", "2"]
    assert source.skipped_files() == []


def test_done_companion_makes_file_ready_and_moves_with_it(tmp_path: Path) -> None:
    source = make(tmp_path, require_done_file=True, stable_seconds=3600)
    inbox = tmp_path / "inbox"
    (inbox / "e.csv").write_text("id;x\n1;a\n", encoding="utf-8")
    assert keys(drain(source)[0]) == []
    (inbox / "e.csv.ok").write_text("", encoding="utf-8")
    assert keys(drain(source)[0]) == ["1"]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["e.csv", "e.csv.ok"]


def test_identical_redrop_gives_nothing_and_is_set_aside_with_a_note(tmp_path: Path) -> None:
    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    (inbox / "e.csv").write_text("id;x\n1;a\n", encoding="utf-8")
    _, checkpoint = drain(source)
    (inbox / "e.csv").write_text("id;x\n1;a\n", encoding="utf-8")
    batches, checkpoint = drain(source, checkpoint)
    assert keys(batches) == []
    moved = sorted(p.name for p in (inbox / "processed").iterdir())
    assert len(moved) == 3
    assert "e.csv" in moved
    note = next(p for p in (inbox / "processed").iterdir() if p.name.endswith(".note.txt"))
    assert "identical" in note.read_text(encoding="utf-8")
    (inbox / "e.csv").write_text("id;x\n1;a\n2;b\n", encoding="utf-8")  # same name, new content
    assert keys(drain(source, checkpoint)[0]) == ["1", "2"]


def test_crash_before_acknowledge_resumes_after_last_committed_batch(tmp_path: Path) -> None:
    source = make(tmp_path, batch_size=2)
    inbox = tmp_path / "inbox"
    (inbox / "e.csv").write_text("id;x\n" + "".join(f"{i};v\n" for i in range(1, 8)), encoding="utf-8")
    reading = source.read(None)
    first = next(reading)
    second = next(reading)
    reading.close()  # the daemon dies; the engine had committed `second`
    assert keys([first, second]) == ["1", "2", "3", "4"]
    assert second.checkpoint is not None
    assert second.checkpoint["current"]["line"] == 5
    batches, checkpoint = drain(make(tmp_path, batch_size=2), second.checkpoint)
    assert keys(batches) == ["5", "6", "7"]
    assert checkpoint is not None
    assert checkpoint["current"] is None
    assert (inbox / "processed" / "e.csv").exists()


def test_duplicate_detected_across_batches_even_when_resuming(tmp_path: Path) -> None:
    source = make(tmp_path, batch_size=2)
    (tmp_path / "inbox" / "e.csv").write_text("id;x\n1;a\n2;b\n3;c\n1;d\n", encoding="utf-8")
    reading = source.read(None)
    first = next(reading)
    reading.close()
    batches, _ = drain(source, first.checkpoint)
    assert keys(batches) == ["3"]
    assert [p.reason for b in batches for p in b.problems] == [
        "duplicate key '1': already on line 2 of this file; only the first row is used"]


def test_files_read_oldest_first(tmp_path: Path) -> None:
    import os

    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    for name, mtime in (("b.csv", 200), ("a.csv", 300), ("c.CSV", 100)):
        (inbox / name).write_text(f"id\n{name}\n", encoding="utf-8")
        os.utime(inbox / name, (mtime, mtime))
    assert keys(drain(source)[0]) == ["c.CSV", "b.csv", "a.csv"]


def test_receipts_are_excel_friendly_and_updated_in_place(tmp_path: Path) -> None:
    source = make(tmp_path)
    source.write_back([
        WriteBack("1", "e.csv", None, None, "pending", None, None, "2026-01-01T10:00:00+01:00"),
        WriteBack("2", "e.csv", None, None, "rejected", None, "poids: « -3 » négatif\nligne 2",
                  "2026-01-01T10:00:00+01:00"),
    ])
    source.write_back([WriteBack("1", "e.csv", "clx1", "BSD-20260101-ABC", "SEALED", "SEALED", None,
                                 "2026-01-01T11:00:00+01:00")])
    path = tmp_path / "inbox" / "receipts" / "e.csv.receipt.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfkey;bsd_id;readable_id;status;remote_status;error;updated_at\r\n")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert [(r["key"], r["status"], r["readable_id"]) for r in rows] == [
        ("1", "SEALED", "BSD-20260101-ABC"), ("2", "rejected", "")]
    assert rows[1]["error"] == "poids: « -3 » négatif ligne 2"
    assert [p.name for p in path.parent.iterdir()] == ["e.csv.receipt.csv"]  # no temp file left


def test_big_file_is_streamed_with_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    source = make(tmp_path, batch_size=200)
    path = tmp_path / "inbox" / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id;producteur;commentaire\n")
        for i in range(30_000):
            fh.write(f"{i};Société Générale des Déchets {i};{'x' * 60}\n")
    assert path.stat().st_size > 3_000_000
    tracemalloc.start()
    count = 0
    for batch in source.read(None):
        count += len(batch.records)
        source.acknowledge(batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 30_000
    assert peak < 2_000_000  # a 256 KiB inspection block and a few batches, not the 3 MB file
