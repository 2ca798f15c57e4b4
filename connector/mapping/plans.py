"""Compiled field plans and their evaluation against one record: pure, no schema lookups.

Evaluation never stops at the first bad field: it collects every problem of the record so that
the IT team fixes a row once, not once per field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.mapping.conditions import Condition, condition_holds
from connector.mapping.lookups import LookupRef, LookupTable
from connector.mapping.schema_paths import LeafType, coerce_leaf
from connector.mapping.transforms import Transform, apply_chain, is_empty

__all__ = [
    "Evaluation", "FieldProblem", "LeafPlan", "ListPlan", "ObjectPlan", "Template", "TraceLine", "evaluate",
]


@dataclass(frozen=True)
class Template:
    """``"{a} {b}"`` parsed once into literal text and column references."""

    text: str
    parts: tuple[tuple[str, str | None], ...]
    """(literal, column or None) pairs, as ``string.Formatter.parse`` gives them."""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(col for _, col in self.parts if col is not None)

    def render(self, values: Mapping[str, Any]) -> str | None:
        out: list[str] = []
        filled = False
        for literal, column in self.parts:
            out.append(literal)
            if column is not None:
                value = values.get(column)
                if not is_empty(value):
                    filled = True
                    out.append(str(value).strip())
        text = "".join(out).strip()
        return text if filled and text else None


@dataclass(frozen=True)
class LeafPlan:
    path: tuple[str, ...]
    """Where the value goes, relative to the object being built."""
    label: str
    """Full dotted path, for messages."""
    leaf: LeafType
    column: str | None = None
    template: Template | None = None
    const: Any = None
    chain: tuple[Transform, ...] = ()
    chain_defaults: tuple[Any, ...] = ()
    default: Any = None
    required: bool = False
    conditions: tuple[Condition, ...] = ()
    lookup: LookupRef | None = None

    @property
    def from_record(self) -> bool:
        return self.column is not None or self.template is not None or self.lookup is not None

    def describe_source(self) -> str:
        if self.column is not None:
            return f' (column "{self.column}")'
        if self.template is not None:
            return f" (template {self.template.text!r})"
        if self.lookup is not None:
            return f" ({self.lookup.describe()})"
        return ""


@dataclass(frozen=True)
class ListPlan:
    path: tuple[str, ...]
    label: str
    item: ObjectPlan
    children: str | None = None
    """Child rows name; None when the items come from the record's own columns."""
    items: tuple[ObjectPlan, ...] = ()
    required: bool = False
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class ObjectPlan:
    fields: tuple[LeafPlan | ListPlan, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FieldProblem:
    field: str
    column: str | None
    message: str
    """Complete sentence minus the record origin: ``field "x" (column "y"): reason``."""


@dataclass
class TraceLine:
    """What happened to one field of one record (``td-connector explain`` prints these)."""

    path: str
    source: str
    raw: Any = None
    steps: list[tuple[str, Any]] = field(default_factory=list)
    final: Any = None
    conditions: list[tuple[str, bool]] = field(default_factory=list)
    skipped: bool = False
    problem: str | None = None


@dataclass
class Evaluation:
    """The state of one record's evaluation: problems found, payload so far, optional trace."""

    problems: list[FieldProblem] = field(default_factory=list)
    root: dict[str, Any] | None = None
    """The top-level payload being built: ``field`` conditions read it."""
    trace: list[TraceLine] | None = None
    lookups: Mapping[str, LookupTable] = field(default_factory=dict)
    """Lookup name → loaded table (see ``connector.sources.lookups``)."""
    used_lookups: set[str] = field(default_factory=set)


_NO_VERDICTS: list[tuple[str, bool]] = []
"""Shared, never mutated: a node without conditions."""


def evaluate(plan: ObjectPlan, values: Mapping[str, Any],
             children: Mapping[str, Sequence[Mapping[str, Any]]],
             ev: Evaluation, where: str = "") -> dict[str, Any] | None:
    """Build the input object; problems are appended; None when every record value was empty.

    A field whose conditions do not hold is left out, as if its value were empty.
    """
    out: dict[str, Any] = {}
    if ev.root is None:
        ev.root = out
    any_record_value = False
    only_consts = True
    for node in plan.fields:
        verdicts: list[tuple[str, bool]] = _NO_VERDICTS
        if node.conditions:
            verdicts = [(c.text, condition_holds(c, values, ev.root)) for c in node.conditions]
            if not all(v for _, v in verdicts):
                if ev.trace is not None:
                    ev.trace.append(TraceLine(node.label + where, _source(node), conditions=verdicts,
                                              skipped=True))
                continue
        if isinstance(node, ListPlan):
            result = _evaluate_list(node, values, children, ev, where)
            only_consts = only_consts and node.children is None and not node.items
        else:
            only_consts = only_consts and not node.from_record
            result = _evaluate_leaf(node, values, ev, where, verdicts)
            if result is not None and node.from_record:
                any_record_value = True
        if result is not None:
            if isinstance(node, ListPlan):
                any_record_value = True
            _set_in(out, node.path, result)
    if not out or (not any_record_value and not only_consts):
        return None
    return out


def _source(node: LeafPlan | ListPlan) -> str:
    if isinstance(node, ListPlan):
        return f'child rows "{node.children}"' if node.children else "items"
    return node.describe_source().strip(" ()") or "constant"


_CONSTANTS: dict[int, tuple[LeafPlan, Any]] = {}
"""A constant leaf's value, computed once: it does not depend on the record (keyed by plan id,
with the plan kept alive beside it so that the id cannot be reused)."""


def _evaluate_leaf(node: LeafPlan, values: Mapping[str, Any], ev: Evaluation, where: str,
                   verdicts: list[tuple[str, bool]]) -> Any:
    if node.column is not None:
        raw = values.get(node.column)
    elif node.template is not None:
        raw = node.template.render(values)
    elif node.lookup is not None:
        try:
            raw = node.lookup.read(values, ev.lookups)
        except ValueError as exc:
            message = f'field "{node.label}"{where}{node.describe_source()}: {exc}'
            ev.problems.append(FieldProblem(node.label, node.lookup.by, message))
            if ev.trace is not None:
                ev.trace.append(TraceLine(node.label + where, _source(node), conditions=verdicts,
                                          problem=str(exc)))
            return None
        if raw is not None or not is_empty(values.get(node.lookup.by)):
            ev.used_lookups.add(node.lookup.name)
    else:
        cached = _CONSTANTS.get(id(node))
        if ev.trace is None and cached is not None and cached[0] is node:
            # A list is copied: every payload owns its values, whatever is done to them later.
            return list(cached[1]) if isinstance(cached[1], list) else cached[1]
        before = len(ev.problems)
        value = _evaluate_value(node, node.const, ev, where, verdicts)
        if len(ev.problems) == before and len(_CONSTANTS) < 10_000:
            _CONSTANTS[id(node)] = (node, value)
        return value
    return _evaluate_value(node, raw, ev, where, verdicts)


def _evaluate_value(node: LeafPlan, raw: Any, ev: Evaluation, where: str,
                    verdicts: list[tuple[str, bool]]) -> Any:
    line = None
    if ev.trace is not None:  # explain only: the hot path builds no trace objects
        line = TraceLine(node.label + where, _source(node), raw=raw, conditions=verdicts)
        ev.trace.append(line)
    try:
        value = apply_chain(raw, node.chain, node.chain_defaults, line.steps if line else None)
        if is_empty(value) or value == []:
            value = node.default
            if line is not None and value is not None:
                line.steps.append(("default", value))
        if is_empty(value) or value == []:
            if node.required:
                raise ValueError(_required_reason(node))
            return None
        final = coerce_leaf(value, node.leaf)
        if line is not None:
            line.final = final
        return final
    except ValueError as exc:
        if line is not None:
            line.problem = str(exc)
        ev.problems.append(FieldProblem(
            node.label, node.column, f'field "{node.label}"{where}{node.describe_source()}: {exc}'
        ))
        return None


def _required_reason(node: LeafPlan) -> str:
    if node.column is not None:
        return "is required but the column is empty"
    if node.template is not None:
        return f"is required but every column of the template is empty ({', '.join(node.template.columns)})"
    if node.lookup is not None:
        return f'is required but column "{node.lookup.column}" of lookup "{node.lookup.name}" is empty'
    return "is required but has no value"


def _evaluate_list(node: ListPlan, values: Mapping[str, Any],
                   children: Mapping[str, Sequence[Mapping[str, Any]]],
                   ev: Evaluation, where: str) -> list[dict[str, Any]] | None:
    built: list[dict[str, Any]] = []
    if node.children is not None:
        for index, row in enumerate(children.get(node.children, ())):
            item = evaluate(node.item, row, {}, ev, f"{where} [{node.children} #{index + 1}]")
            if item is not None:
                built.append(item)
    else:
        for index, item_plan in enumerate(node.items):
            item = evaluate(item_plan, values, children, ev, f"{where} [item {index + 1}]")
            if item is not None:
                built.append(item)
    if not built:
        if node.required:
            source = f'child rows "{node.children}"' if node.children else "its items' columns"
            ev.problems.append(FieldProblem(
                node.label, None, f'field "{node.label}"{where}: is required but {source} gave no item'
            ))
        return None
    return built


def _set_in(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
