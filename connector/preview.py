"""``td-connector preview``: what the next pass would do with what is there, nothing sent or stored.

Records are mapped and validated exactly as ingest does (same functions, same messages): a row
the pipeline would reject is shown with the pipeline's reason, a file it would reject too. What is
not shown is said on stderr (files not yet quiet, rows already ingested), so an empty preview
explains itself.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connector.engine.context import Binding
from connector.engine.ingest import IngestEntry, map_record, problem_entry, validate_entry
from connector.engine.operations import create_op
from connector.errors import UsageError
from connector.logs import mask_secrets
from connector.runtime import Runtime, build_runtime
from connector.settings import Settings

__all__ = ["preview"]


def preview(
    settings: Settings,
    config_dir: Path,
    *,
    limit: int,
    as_json: bool,
    only: str | None = None,
    keys: list[str] | None = None,
) -> int:
    """0 when every record shown would be accepted, 1 when one would be rejected."""
    runtime = build_runtime(settings, config_dir, offline=True)
    try:
        bindings = _chosen(runtime, only)
        wanted = set(keys or [])
        seen_keys: list[str] = []
        failures = shown = 0
        for binding in bindings:
            _say_skipped(binding, runtime)
            count = 0
            for entry in _entries(runtime, binding):
                seen_keys.append(entry.key)
                if wanted and entry.key not in wanted:
                    continue
                if not wanted and count >= limit:
                    break
                count += 1
                shown += 1
                failures += entry.payload is None
                _show(binding, entry, as_json)
        missing = sorted(wanted - set(seen_keys))
        if missing:
            raise UsageError(
                f"--key: no record {', '.join(map(repr, missing))} in what the source holds now",
                problems=[_unknown_key(k, seen_keys) for k in missing],
            )
        if not shown:
            print("preview: nothing to show (see the lines above for what was skipped)", file=sys.stderr)
    finally:
        runtime.close()
    return 1 if failures else 0


def _chosen(runtime: Runtime, only: str | None) -> list[Binding]:
    bindings = list(runtime.pipeline.bindings)
    if only is None:
        return bindings
    chosen = [b for b in bindings if b.mapping.name == only]
    if not chosen:
        names = [b.mapping.name for b in bindings]
        close = difflib.get_close_matches(only, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--mapping: no mapping named {only!r}{hint}; mappings: {', '.join(names)}")
    return chosen


def _unknown_key(key: str, seen: list[str]) -> str:
    close = difflib.get_close_matches(key, seen, n=3)
    sample = close or seen[:5]
    more = "closest" if close else "for example"
    return f"no record {key!r}; {more}: {', '.join(sample) or '(the source holds no record now)'}"


def _entries(runtime: Runtime, binding: Binding) -> Iterator[IngestEntry]:
    """Every record and rejected row or file the source has now, as ingest would store it."""
    checkpoint = runtime.store.get_checkpoint(binding.mapping.name)
    for batch in binding.source.read(checkpoint):
        for record in batch.records:
            yield validate_entry(runtime.schema, binding, map_record(binding, record))
        for problem in batch.problems:
            yield problem_entry(binding, problem)
        note = getattr(batch.ack_token, "note", None)
        if note:
            print(f"preview: skipped {note.strip()}", file=sys.stderr)


def _show(binding: Binding, entry: IngestEntry, as_json: bool) -> None:
    name = binding.mapping.name
    if entry.payload is None:
        _emit(as_json, {"mapping": name, "key": entry.key, "origin": entry.origin, "error": entry.error},
              header=f"# {name} / {entry.key} ({entry.origin}): REJECTED")
        return
    op = create_op(binding.mapping.kind, entry.payload)
    _emit(as_json, {"query": op.query, "variables": op.variables},
          header=f"# {name} / {entry.key} ({entry.origin})")


def _say_skipped(binding: Binding, runtime: Runtime) -> None:
    """Files of a drop folder the pass would not read yet, and why; rows read before."""
    name = binding.mapping.name
    spec = getattr(binding.source, "spec", None)
    if getattr(spec, "type", "") == "sql" and runtime.store.get_checkpoint(name) is not None:
        print(f"preview: {name}: rows ingested before are not shown (read from the last checkpoint)",
              file=sys.stderr)
    stable = getattr(binding.source, "stable_files", None)
    skipped = getattr(binding.source, "skipped_files", None)
    folder = getattr(binding.source, "folder", None)
    if stable is None or skipped is None or folder is None or not Path(folder).is_dir():
        return
    stable()  # judges every file of the folder, as the pass would; the source keeps why it skipped some
    for entry in skipped():
        print(mask_secrets(f"preview: {name}: skipped {entry.name}: {entry.reason}"), file=sys.stderr)


def _emit(as_json: bool, obj: dict[str, Any], header: str | None = None) -> None:
    """Displayed text is masked like the logs: a record may echo the token (a planted file...)."""
    if as_json:
        print(mask_secrets(json.dumps(obj, ensure_ascii=False)))
        return
    if header:
        print(mask_secrets(header))
    print(mask_secrets(json.dumps(obj, ensure_ascii=False, indent=2)))
