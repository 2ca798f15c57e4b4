"""Files still being written are never read half, and never moved while they change.

A real writer thread keeps the export open and writes it in chunks (cut in the middle of lines),
pausing between them; the test decides when each chunk is written and what time it is for the
source (a wall clock set relative to the file's own last change), so nothing races the scheduler.
Records go through the real ingest step into a real SQLite state store: every order must end up
there exactly once (no loss, no duplicate, nothing rejected as truncated).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from graphql import GraphQLSchema

from connector.engine.context import Binding, Pipeline
from connector.engine.ingest import ingest
from connector.mapping.loading import load_mapping
from connector.sources import CsvFolderSource, open_source
from connector.sources.specs import CsvSourceSpec

DEMO = Path(__file__).resolve().parents[3] / "connector" / "demo"
QUIET = CsvSourceSpec.model_fields["stable_seconds"].default  # the default quiet period
POLL = 10.0  # the daemon's default ingest interval
HEADER, TEMPLATE = (DEMO / "enlevements_mars.csv").read_text("utf-8").splitlines()[0:3:2]


def order(i: int) -> str:
    return TEMPLATE.replace("BE-2026-0413", f"ORD-{i:05d}") + "\n"


class WallClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def after_last_change(self, path: Path, seconds: float) -> None:
        """It is now ``seconds`` after the file's own last change."""
        st = path.stat()
        self.now = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 + seconds


class ChunkWriter:
    """An exporter that keeps its file open and writes one chunk each time it is told to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._chunks: queue.Queue[str | None] = queue.Queue()
        self._written = threading.Semaphore(0)
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10)

    def _run(self) -> None:
        with self.path.open("w", encoding="utf-8", newline="") as fh:
            self._opened.set()
            while (chunk := self._chunks.get()) is not None:
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
                self._written.release()

    def write(self, chunk: str) -> None:
        self._chunks.put(chunk)
        assert self._written.acquire(timeout=10)

    def close(self) -> None:
        self._chunks.put(None)
        self._thread.join(10)


class Harness:
    """The demo BSDD mapping on a drop folder, its real ingest step and state store."""

    def __init__(self, tmp_path: Path, schema: GraphQLSchema, **spec: object) -> None:
        self.inbox = tmp_path / "inbox"
        self.inbox.mkdir()
        text = (DEMO / "bsdd_csv.toml").read_text("utf-8").replace("stable_seconds = 0\n", "")
        extra = "".join(f"{k} = {v}\n" for k, v in spec.items())
        (tmp_path / "mapping.toml").write_text(text.replace('key = ["n_bon"]\n', f'key = ["n_bon"]\n{extra}'))
        mapping = load_mapping(tmp_path / "mapping.toml", schema)
        source = open_source(mapping.source, base_dir=tmp_path, mapping_name=mapping.name,
                             state_dir=tmp_path / "var")
        assert isinstance(source, CsvFolderSource)
        self.source = source
        self.clock = WallClock()
        source._clock = self.clock
        from connector.state import open_state_store

        self.pipeline = Pipeline(store=open_state_store(f"sqlite:///{tmp_path}/var/state.db"),
                                 bindings=[Binding(mapping, source)])

    def poll(self) -> dict[str, int]:
        return ingest(self.pipeline, threading.Event())

    def states(self) -> dict[str, str]:
        return {r.record_key: r.state for r in self.pipeline.store.records()}

    def processed(self) -> list[str]:
        folder = self.inbox / "processed"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def hook_before_move(self, action: Callable[[], None]) -> None:
        """Run ``action`` once, between the engine's commit of a file's last batch and its move."""
        original = self.source.acknowledge

        def acknowledge(batch: object) -> None:
            if getattr(batch, "ack_token", None) is not None and not done:
                done.append(True)
                action()
            original(batch)  # type: ignore[arg-type]

        done: list[bool] = []
        self.source.acknowledge = acknowledge  # type: ignore[method-assign]


@pytest.fixture
def harness(tmp_path: Path, official_schema: GraphQLSchema) -> Harness:
    return Harness(tmp_path, official_schema)


def test_writer_pausing_longer_than_the_poll_and_half_the_quiet_period_loses_nothing(
        harness: Harness) -> None:
    path = harness.inbox / "export.csv"
    writer = ChunkWriter(path)
    text = HEADER + "\n" + "".join(order(i) for i in range(1, 31))
    cuts = [0, 700, 1900, 3100, 4400, len(text)]  # cut inside lines, as a buffered writer does
    for start, end in itertools.pairwise(cuts):
        writer.write(text[start:end])
        for pause in (POLL + 5, QUIET / 2 + 5, QUIET - 1):  # the writer is silent this long
            harness.clock.after_last_change(path, pause)
            assert harness.poll().get("read", 0) == 0
            [skipped] = harness.source.skipped_files()
            assert skipped.name == "export.csv"
            assert skipped.reason == f"modified {pause:.0f} s ago, quiet period {QUIET:g} s"
    writer.close()
    harness.clock.after_last_change(path, QUIET + 1)
    counts = harness.poll()
    assert counts["new"] == 30
    assert "rejected" not in counts
    assert sorted(harness.states()) == [f"ORD-{i:05d}" for i in range(1, 31)]
    assert set(harness.states().values()) == {"pending"}
    assert harness.processed() == ["export.csv"]


def test_one_shot_source_reads_a_file_already_quiet_and_says_why_it_skips_a_fresh_one(
        tmp_path: Path, official_schema: GraphQLSchema) -> None:
    """A new process (``preview``, ``sync --once``) judges files by their own times, not by what it
    saw at an earlier poll: an old file is read at once, a fresh one is skipped with the reason."""
    harness = Harness(tmp_path, official_schema, stable_seconds=0.5)
    old, fresh = harness.inbox / "old.csv", harness.inbox / "fresh.csv"
    old.write_text(HEADER + "\n" + order(1), encoding="utf-8")
    time.sleep(0.6)  # the only real wait: file times cannot be set back (ctime)
    fresh.write_text(HEADER + "\n" + order(2), encoding="utf-8")
    harness.clock.after_last_change(fresh, 0.1)
    assert harness.source.stable_files() == [old]  # first sight in this process: no earlier poll
    assert [(f.name, f.reason) for f in harness.source.skipped_files()] == [
        ("fresh.csv", "modified 0 s ago, quiet period 0.5 s")]
    assert harness.poll()["new"] == 1
    assert harness.processed() == ["old.csv"]


def test_file_that_grows_between_read_and_move_stays_and_is_read_again_whole(harness: Harness) -> None:
    path = harness.inbox / "export.csv"
    path.write_text(HEADER + "\n" + "".join(order(i) for i in range(1, 6)), encoding="utf-8")
    harness.hook_before_move(lambda: path.open("a", encoding="utf-8").write(order(6) + order(7)[:40]))
    harness.clock.after_last_change(path, QUIET + 1)
    assert harness.poll()["new"] == 5
    assert harness.processed() == []  # it changed after it was read: not moved
    assert "changed before it was moved" in harness.source.skipped_files()[0].reason
    with path.open("a", encoding="utf-8") as fh:
        fh.write(order(7)[40:])
    harness.clock.after_last_change(path, QUIET - 1)
    assert harness.poll().get("read", 0) == 0  # the quiet period starts again from the change
    harness.clock.after_last_change(path, QUIET + 1)
    counts = harness.poll()
    assert (counts["new"], counts["unchanged"]) == (2, 5)  # rows already ingested are recognised
    assert len(harness.states()) == 7
    assert harness.processed() == ["export.csv"]


def test_file_that_grows_while_it_is_read_hands_over_no_partial_last_batch(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = CsvFolderSource(CsvSourceSpec(type="csv", folder="inbox", key=["n_bon"], batch_size=2),
                             base_dir=tmp_path, mapping_name="m")
    path = inbox / "export.csv"
    path.write_text(HEADER + "\n" + "".join(order(i) for i in range(1, 6)), encoding="utf-8")
    source._clock = lambda: path.stat().st_ctime + QUIET + 1
    seen: list[str] = []
    checkpoint = None
    for n, batch in enumerate(source.read(None)):
        seen += [r.key for r in batch.records]
        checkpoint = batch.checkpoint
        source.acknowledge(batch)
        if n == 0:  # the writer comes back while the rest of the file is being read
            with path.open("a", encoding="utf-8") as fh:
                fh.write(order(6)[:30])
    assert seen == ["ORD-00001", "ORD-00002", "ORD-00003", "ORD-00004"]  # not 5, nor the cut line
    assert not (inbox / "processed").exists()
    assert checkpoint is not None
    assert checkpoint["current"] is None  # read again from the first line
    with path.open("a", encoding="utf-8") as fh:
        fh.write(order(6)[30:])
    again = [r.key for b in source.read(checkpoint) for r in b.records]
    assert again == [f"ORD-{i:05d}" for i in range(1, 7)]


def test_file_rewritten_in_place_with_the_same_size_is_read_again(harness: Harness) -> None:
    path = harness.inbox / "export.csv"
    path.write_text(HEADER + "\n" + "".join(order(i) for i in range(1, 4)), encoding="utf-8")
    corrected = path.read_text("utf-8").replace(order(2), order(2).replace(";85;", ";86;"))  # weight
    assert len(corrected) == len(path.read_text("utf-8"))

    def rewrite() -> None:
        with path.open("r+", encoding="utf-8") as fh:  # same inode, same size
            fh.write(corrected)

    harness.hook_before_move(rewrite)
    harness.clock.after_last_change(path, QUIET + 1)
    assert harness.poll()["new"] == 3
    assert harness.processed() == []
    assert "same size, rewritten" in harness.source.skipped_files()[0].reason
    harness.clock.after_last_change(path, QUIET + 1)
    counts = harness.poll()
    assert (counts["changed"], counts["unchanged"]) == (1, 2)
    assert harness.processed() == ["export.csv"]


@pytest.mark.slow
def test_two_thousand_rows_written_slowly_all_arrive_once(harness: Harness) -> None:
    path = harness.inbox / "big_export.csv"
    writer = ChunkWriter(path)
    text = HEADER + "\n" + "".join(order(i) for i in range(1, 2101))
    size = 9_973  # about 40 rows, never on a line boundary
    pauses = [POLL + 1, QUIET / 2 + 1, 3.0, QUIET - 0.5]
    for n, start in enumerate(range(0, len(text), size)):
        writer.write(text[start:start + size])
        if n % 5 == 0:  # the exporter stops now and then; the daemon polls meanwhile
            harness.clock.after_last_change(path, pauses[(n // 5) % len(pauses)])
            assert harness.poll().get("read", 0) == 0
    writer.close()
    harness.clock.after_last_change(path, QUIET + 1)
    counts = harness.poll()
    assert counts["new"] == 2100
    assert "rejected" not in counts
    assert len(harness.states()) == 2100
    assert harness.processed() == ["big_export.csv"]
    harness.clock.now += QUIET
    assert harness.poll().get("read", 0) == 0


def test_writer_stopped_mid_line_longer_than_the_quiet_period_is_waited_for(harness: Harness) -> None:
    """A buffered writer flushes blocks cut mid-line: past the quiet period, a file whose last line
    has no line end still waits (5 quiet periods) instead of being read with a cut last row."""
    path = harness.inbox / "export.csv"
    writer = ChunkWriter(path)
    text = HEADER + "\n" + "".join(order(i) for i in range(1, 31))
    writer.write(text[:2000])
    harness.clock.after_last_change(path, QUIET * 3)
    assert harness.poll().get("read", 0) == 0
    [skipped] = harness.source.skipped_files()
    assert skipped.reason.startswith("its last line has no line end (a writer stopped mid-line?); "
                                     f"modified {QUIET * 3:.0f} s ago")
    writer.write(text[2000:])
    writer.close()
    harness.clock.after_last_change(path, QUIET + 1)
    assert harness.poll()["new"] == 30
    assert harness.processed() == ["export.csv"]


def test_export_without_a_final_line_end_is_read_after_five_quiet_periods(harness: Harness) -> None:
    path = harness.inbox / "export.csv"
    path.write_text(HEADER + "\n" + order(1) + order(2).rstrip("\n"), encoding="utf-8")
    harness.clock.after_last_change(path, QUIET * 5 - 1)
    assert harness.poll().get("read", 0) == 0
    harness.clock.after_last_change(path, QUIET * 5)
    counts = harness.poll()
    assert counts["new"] == 2
    assert "rejected" not in counts
    assert harness.processed() == ["export.csv"]
