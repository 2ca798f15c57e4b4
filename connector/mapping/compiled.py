"""A compiled mapping and what evaluating one record gives: pure, safe to share between threads.

``compiler.py`` builds it from the spec; ``apply`` (ingest) and ``evaluate`` (explain) run it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from connector.domain.kinds import BsdKind
from connector.errors import RecordError
from connector.mapping.checks import check_payload
from connector.mapping.lookups import LookupRef, LookupTable
from connector.mapping.plans import Evaluation, LeafPlan, ObjectPlan, TraceLine, evaluate
from connector.mapping.rules import Rule, RuleVerdict, run_rule
from connector.mapping.spec import MappingSpec
from connector.sources.base import SourceRecord
from connector.sources.specs import SqlSourceSpec

__all__ = ["CompiledMapping", "MappingResult", "unknown_column"]


@dataclass
class MappingResult:
    """Everything one record's evaluation found; ``apply`` raises on problems, ``explain`` shows all."""

    payload: dict[str, Any]
    problems: list[str]
    """Complete lines (origin first): rules, fields, then domain checks."""
    verdicts: list[RuleVerdict]
    checks: list[str]
    """Domain check problems (run only when the fields mapped without problem)."""
    trace: list[TraceLine] | None = None
    used_lookups: frozenset[str] = frozenset()
    first_field: str | None = None
    first_column: str | None = None


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping ready to apply: pure, reusable, safe to share between threads."""

    name: str
    path: str
    kind: BsdKind
    source: Any
    """The ``[source]`` spec (``CsvSourceSpec`` or ``SqlSourceSpec``)."""
    key_columns: tuple[str, ...]
    seal: bool
    plan: ObjectPlan
    column_uses: tuple[tuple[str, str], ...]
    """(field key, column) pairs for the record's own columns, to name the field in problems."""
    spec: MappingSpec
    rules: tuple[Rule, ...] = ()
    rule_uses: tuple[tuple[str, str], ...] = ()
    """(``rules[i]`` location, column) pairs, checked against the source like field columns."""
    tables: Mapping[str, LookupTable] = field(default_factory=dict)
    """Loaded lookup tables (``with_tables``); the mapping stays a pure function of them."""

    def required_columns(self) -> set[str]:
        """Columns the source must provide (child-row columns excluded)."""
        return ({column for _, column in self.column_uses} | {column for _, column in self.rule_uses}
                | set(self.key_columns))

    def with_tables(self, tables: Mapping[str, LookupTable]) -> CompiledMapping:
        """The same mapping reading these lookup tables (loaded by ``connector.sources.lookups``)."""
        return replace(self, tables=dict(tables))

    def check_lookups(self, tables: Mapping[str, LookupTable]) -> list[str]:
        """Problems for every field reading a column its lookup table does not have."""
        problems = []
        for where, ref in _lookup_refs(self.plan, "fields"):
            table = tables.get(ref.name)
            if table is not None and ref.column not in table.columns:
                problems.append(f'{self.path}: {where}: lookup "{ref.name}" ({table.origin}): '
                                f"{unknown_column(ref.column, table.columns)}")
        return problems

    @property
    def lookup_fingerprint(self) -> str:
        """Changes when any loaded lookup table's content changes."""
        return ",".join(f"{name}={self.tables[name].fingerprint}" for name in sorted(self.tables))

    def check_columns(self, available: Sequence[str]) -> list[str]:
        """Problems for every referenced column the source does not have, with a suggestion."""
        known = list(available)
        problems: list[str] = []
        for column in self.key_columns:
            if column not in known:
                problems.append(f"{self.path}: source.key: {unknown_column(column, known)}")
        if isinstance(self.source, SqlSourceSpec):
            for attr in ("cursor_column", "flag_column"):
                column = getattr(self.source, attr)
                if column and column not in known:
                    problems.append(f"{self.path}: source.{attr}: {unknown_column(column, known)}")
        for key, column in self.column_uses:
            if column not in known:
                problems.append(f'{self.path}: fields."{key}": {unknown_column(column, known)}')
        for where, column in self.rule_uses:
            if column not in known:
                problems.append(f"{self.path}: {where}: {unknown_column(column, known)}")
        return problems

    def _with_column(self, problem: str) -> str:
        """``field "a.b": reason`` → ``field "a.b" (column "c"): reason``, so the row can be fixed."""
        for key, column in self.column_uses:
            prefix = f'field "{key}":'
            if problem.startswith(prefix):
                return f'field "{key}" (column "{column}"):' + problem[len(prefix):]
        return problem

    def evaluate(self, record: SourceRecord, *, now: datetime | None = None,
                 trace: bool = False) -> MappingResult:
        """Pure: rules, fields and domain checks of one record (``now`` for date rules)."""
        moment = now or datetime.now(UTC)
        verdicts = [run_rule(rule, record.values, moment) for rule in self.rules]
        lines = [f"{record.origin}: {v.message()}" for v in verdicts if v.reason is not None]
        ev = Evaluation(trace=[] if trace else None, lookups=self.tables)
        payload = evaluate(self.plan, record.values, record.children, ev) or {}
        if self.kind.has_custom_id and "customId" not in payload:
            payload["customId"] = record.key
        lines += [f"{record.origin}: {p.message}" for p in ev.problems]
        # Domain checks only on a payload whose rules and fields passed: no echo of a rule.
        checks: list[str] = []
        if not lines:
            checks = [self._with_column(p) for p in check_payload(self.kind, payload, seal=self.seal)]
            lines += [f"{record.origin}: {p}" for p in checks]
        # The error's field and column are those of its first line: a rule's column, or a field's.
        failed = next((v for v in verdicts if v.reason is not None), None)
        first = ev.problems[0] if ev.problems else None
        return MappingResult(
            payload, lines, verdicts, checks, ev.trace, frozenset(ev.used_lookups),
            first_field=None if failed or first is None else first.field,
            first_column=failed.rule.column if failed else (first.column if first else None),
        )

    def apply(self, record: SourceRecord, *, now: datetime | None = None) -> dict[str, Any]:
        """The input object of the kind's create mutation, or one RecordError listing every problem."""
        result = self.evaluate(record, now=now)
        if result.problems:
            error = RecordError(
                "; ".join(result.problems),
                field=result.first_field, column=result.first_column,
                mapping=self.name, key=record.key, origin=record.origin,
            )
            error.problems = result.problems  # type: ignore[attr-defined]
            raise error
        return result.payload


def unknown_column(column: str, known: Sequence[str]) -> str:
    guess = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
    if guess:
        return f'unknown column "{column}" (did you mean "{guess[0]}"?)'
    return f'unknown column "{column}" (columns: {", ".join(known) or "none"})'


def _lookup_refs(plan: ObjectPlan, where: str) -> list[tuple[str, LookupRef]]:
    out: list[tuple[str, LookupRef]] = []
    for node in plan.fields:
        if isinstance(node, LeafPlan):
            if node.lookup is not None:
                out.append((f'{where}."{node.label}"', node.lookup))
        else:
            for inner in (node.item, *node.items):
                out += _lookup_refs(inner, where)
    return out
