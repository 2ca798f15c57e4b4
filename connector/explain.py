"""``td-connector explain --key K``: why one record became what it became.

For one record: each target field with where its value comes from (column, template, lookup,
constant), the raw value, each transform's output and the final value; the conditions that kept
or left out a field; the row rules and the domain checks with their verdict; and the operations
the record would lead to, given what the state store knows. Nothing is sent, nothing is stored.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connector.engine.context import Binding
from connector.engine.ingest import map_record, validate_entry
from connector.logs import mask_secrets
from connector.mapping.compiled import CompiledMapping, MappingResult
from connector.mapping.plans import TraceLine
from connector.runtime import Runtime, build_runtime
from connector.settings import Settings
from connector.sources import open_source
from connector.sources.base import SourceRecord
from connector.state.models import Record, RecordState

__all__ = ["explain", "explain_record", "render_text"]


@dataclass(frozen=True)
class _Found:
    binding: Binding
    record: SourceRecord
    where: str
    """``the source`` or ``the state store (values last read ...)``."""
    row: Record | None


def explain(settings: Settings, config_dir: Path, *, key: str, mapping: str | None = None,
            as_json: bool = False) -> int:
    """Print the explanation of every record with this key (one per mapping); 1 when none exists."""
    runtime = build_runtime(settings, config_dir, offline=True)
    try:
        found = list(_find(runtime, key, mapping))
        if not found:
            names = ", ".join(b.mapping.name for b in runtime.pipeline.bindings)
            scope = f"mapping {mapping}" if mapping else f"mappings {names}"
            where = f"in the sources or the state of {scope}"
            print(mask_secrets(f"td-connector: no record with key {key!r} {where}"))
            return 1
        for item in found:
            report = explain_record(runtime, item.binding, item.record, item.row, item.where)
            text = json.dumps(report, ensure_ascii=False, default=str) if as_json else render_text(report)
            print(mask_secrets(text))
        return 0
    finally:
        runtime.close()


def _find(runtime: Runtime, key: str, only: str | None) -> Iterator[_Found]:
    for binding in runtime.pipeline.bindings:
        if only and binding.mapping.name != only:
            continue
        with runtime.store.session() as session:
            row = session.scalars(select(Record).where(Record.mapping == binding.mapping.name,
                                                       Record.record_key == key)).first()
            session.expunge_all()
        record = _from_source(binding, key)
        if record is not None:
            yield _Found(binding, record, "the source", row)
        elif row is not None and row.source_values:
            raw = json.loads(row.source_values)
            stored = SourceRecord(key=key, values=raw.get("values") or {}, origin=row.origin,
                                  unit=row.unit, children=raw.get("children") or {})
            when = f"{row.updated_at:%Y-%m-%d %H:%M}"
            yield _Found(binding, stored, f"the state store (values last read {when})", row)


def _from_source(binding: Binding, key: str) -> SourceRecord | None:
    """The record as the source gives it now, read from the start and never acknowledged.

    Read through a source of its own whose side files (an SQL source's hashes and key map) live
    in a throwaway folder: the daemon's, under ``var/sources``, are neither read nor reset.
    """
    mapping = binding.mapping
    assert isinstance(mapping, CompiledMapping)
    with tempfile.TemporaryDirectory(prefix="td-explain-") as scratch:
        source = open_source(mapping.source, base_dir=Path(mapping.path).parent,
                             mapping_name=mapping.name, state_dir=Path(scratch))
        try:
            for batch in source.read(None):
                for record in batch.records:
                    if record.key == key:
                        return record
        finally:
            source.close()
    return None


def explain_record(runtime: Runtime, binding: Binding, record: SourceRecord, row: Record | None,
                   where: str) -> dict[str, Any]:
    mapping = binding.mapping
    assert isinstance(mapping, CompiledMapping)
    result = mapping.evaluate(record, trace=True)
    entry = validate_entry(runtime.schema, binding, map_record(binding, record))
    return {
        "mapping": mapping.name,
        "key": record.key,
        "origin": record.origin,
        "read_from": where,
        "rules": [_rule(v, record) for v in result.verdicts],
        "fields": [_field(line) for line in result.trace or []],
        "checks": None if result.problems and not result.checks else result.checks,
        "problems": [entry.error] if entry.error else [],
        "lookups_used": sorted(result.used_lookups),
        "payload": entry.payload,
        "operations": _operations(mapping, result, entry.hash, entry.error, row),
    }


def _rule(verdict: Any, record: SourceRecord) -> dict[str, Any]:
    rule = verdict.rule
    status = "skipped" if not verdict.applied else ("ok" if verdict.reason is None else "failed")
    return {"rule": rule.label, "check": rule.check, "columns": list(rule.columns),
            "value": record.values.get(rule.column), "verdict": status, "reason": verdict.reason,
            "conditions": [c.text for c in rule.conditions]}


def _field(line: TraceLine) -> dict[str, Any]:
    return {"field": line.path, "source": line.source, "raw": line.raw,
            "steps": [{"transform": name, "output": value} for name, value in line.steps],
            "final": line.final, "conditions": [{"condition": t, "holds": h} for t, h in line.conditions],
            "left_out": line.skipped, "problem": line.problem}


def _operations(mapping: CompiledMapping, result: MappingResult, digest: str, error: str | None,
                row: Record | None) -> list[str]:
    kind = mapping.kind
    seal = [f"{kind.seal_mutation} (seal = true)"] if mapping.seal else []
    if error:
        return ["none: the record is rejected (see problems)"]
    if row is None or row.bsd_id is None:
        if row is not None and row.payload_hash == digest and row.state == RecordState.REJECTED:
            return ["none until replayed: td-connector retry --key " + row.record_key]
        return [f"{kind.create_mutation} (a new BSD)", *seal]
    if row.payload_hash == digest:
        if row.next_op == "seal":
            return seal
        return [f"none: BSD {row.readable_id or row.bsd_id} is up to date (state {row.state})"]
    if row.remote_status and kind.is_signed(row.remote_status, bool(row.remote_is_draft)):
        return [f"none: BSD {row.readable_id or row.bsd_id} is signed (status {row.remote_status}); the "
                "change becomes a conflict to settle on Trackdéchets with a revision request"]
    return [f"{kind.update_mutation} of BSD {row.readable_id or row.bsd_id} (the payload changed)"]


def render_text(report: dict[str, Any]) -> str:
    head = f"{report['mapping']} / {report['key']}"
    out = [f"{head}  ({report['origin']}; read from {report['read_from']})", ""]
    if report["rules"]:
        out.append("Rules")
        for rule in report["rules"]:
            cols = ", ".join(f'"{c}"' for c in rule["columns"])
            line = (f"  {rule['verdict']:<8}rule {rule['rule']} ({rule['check']}; columns {cols}) "
                    f"value {_show(rule['value'])}")
            if rule["verdict"] == "skipped":
                line += "  [conditions: " + "; ".join(rule["conditions"]) + "]"
            elif rule["reason"]:
                line += f"\n            {rule['reason']}"
            out.append(line)
        out.append("")
    out.append("Fields")
    for item in report["fields"]:
        out.append(f"  {item['field']}  <- {item['source']}")
        for cond in item["conditions"]:
            out.append(f"      {'kept' if cond['holds'] else 'LEFT OUT'}: when {cond['condition']}")
        if item["left_out"]:
            continue
        chain = [f"raw {_show(item['raw'])}"]
        chain += [f"{s['transform']} {_show(s['output'])}" for s in item["steps"]]
        final = f"PROBLEM: {item['problem']}" if item["problem"] else f"final {_show(item['final'])}"
        out.append("      " + " -> ".join([*chain, final]))
    out.append("")
    out.append("Checks")
    if report["checks"]:
        out += [f"  FAILED  {c}" for c in report["checks"]]
    elif report["checks"] is None:
        out.append("  not run (rules or fields failed)")
    else:
        out.append("  ok")
    if report["problems"]:
        out += ["", "Problems"] + [f"  {p}" for p in _split(report["problems"])]
    if report["lookups_used"]:
        out += ["", "Lookups used: " + ", ".join(report["lookups_used"])]
    out += ["", "Operations"] + [f"  {op}" for op in report["operations"]]
    return "\n".join(out) + "\n"


def _split(problems: Sequence[str]) -> list[str]:
    return [part for p in problems for part in p.split("; ")]


def _show(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)
