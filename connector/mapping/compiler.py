"""Turn a validated ``MappingSpec`` into a ``CompiledMapping``: every path, template and transform
checked against the schema once, every problem reported at once.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLInputObjectType, GraphQLSchema

from connector.domain.kinds import KINDS, BsdKind
from connector.errors import MappingError, RecordError
from connector.mapping.checks import check_payload
from connector.mapping.plans import FieldProblem, LeafPlan, ListPlan, ObjectPlan, Template, evaluate
from connector.mapping.schema_paths import LeafType, PathError, coerce_leaf, resolve_path
from connector.mapping.spec import (
    ChildrenValue,
    ColumnValue,
    ConstValue,
    DefaultTransform,
    FieldValue,
    ItemsValue,
    MappingSpec,
    MapTransform,
    TemplateValue,
)
from connector.mapping.transforms import Transform, apply_chain, compile_transform
from connector.sources.base import SourceRecord
from connector.sources.specs import SqlSourceSpec

__all__ = ["CompiledMapping", "compile_mapping"]


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

    def required_columns(self) -> set[str]:
        """Columns the source must provide (child-row columns excluded)."""
        return {column for _, column in self.column_uses} | set(self.key_columns)

    def check_columns(self, available: Sequence[str]) -> list[str]:
        """Problems for every referenced column the source does not have, with a suggestion."""
        known = list(available)
        problems: list[str] = []
        for column in self.key_columns:
            if column not in known:
                problems.append(f"{self.path}: source.key: {_unknown_column(column, known)}")
        if isinstance(self.source, SqlSourceSpec):
            for attr in ("cursor_column", "flag_column"):
                column = getattr(self.source, attr)
                if column and column not in known:
                    problems.append(f"{self.path}: source.{attr}: {_unknown_column(column, known)}")
        for key, column in self.column_uses:
            if column not in known:
                problems.append(f'{self.path}: fields."{key}": {_unknown_column(column, known)}')
        return problems

    def _with_column(self, problem: str) -> str:
        """``field "a.b": reason`` → ``field "a.b" (column "c"): reason``, so the row can be fixed."""
        for key, column in self.column_uses:
            prefix = f'field "{key}":'
            if problem.startswith(prefix):
                return f'field "{key}" (column "{column}"):' + problem[len(prefix):]
        return problem

    def apply(self, record: SourceRecord) -> dict[str, Any]:
        """The input object of the kind's create mutation, or one RecordError listing every problem."""
        field_problems: list[FieldProblem] = []
        payload = evaluate(self.plan, record.values, record.children, field_problems) or {}
        if self.kind.has_custom_id and "customId" not in payload:
            payload["customId"] = record.key
        lines = [f"{record.origin}: {p.message}" for p in field_problems]
        if not field_problems:
            lines += [f"{record.origin}: {self._with_column(p)}"
                      for p in check_payload(self.kind, payload, seal=self.seal)]
        if lines:
            first = field_problems[0] if field_problems else None
            error = RecordError(
                "; ".join(lines),
                field=first.field if first else None,
                column=first.column if first else None,
                mapping=self.name, key=record.key, origin=record.origin,
            )
            error.problems = lines  # type: ignore[attr-defined]
            raise error
        return payload


def _unknown_column(column: str, known: Sequence[str]) -> str:
    guess = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
    if guess:
        return f'unknown column "{column}" (did you mean "{guess[0]}"?)'
    return f'unknown column "{column}" (columns: {", ".join(known) or "none"})'


def compile_mapping(spec: MappingSpec, schema: GraphQLSchema, *, path: str) -> CompiledMapping:
    """Check every field against the schema; raise one MappingError with all the problems."""
    kind = KINDS[spec.kind]
    problems: list[str] = []
    root = schema.get_type(kind.input_type)
    plan = ObjectPlan()
    uses: list[tuple[str, str]] = []
    if not isinstance(root, GraphQLInputObjectType):
        problems.append(f"{path}: kind: {kind.name} needs input type {kind.input_type}, "
                        "which the target's schema does not have")
    else:
        compiler = _Compiler(kind, path, problems, uses)
        plan = compiler.object_plan(root, spec.fields, prefix="", where="fields")
    if problems:
        raise MappingError(f"{path}: {len(problems)} problem(s) in the mapping", problems)
    return CompiledMapping(
        name=spec.name, path=path, kind=kind, source=spec.source,
        key_columns=tuple(spec.source.key), seal=spec.lifecycle.seal, plan=plan,
        column_uses=tuple(uses), spec=spec,
    )


class _Compiler:
    def __init__(self, kind: BsdKind, path: str, problems: list[str],
                 uses: list[tuple[str, str]]) -> None:
        self.kind = kind
        self.path = path
        self.problems = problems
        self.uses = uses

    def problem(self, where: str, key: str, reason: str) -> None:
        self.problems.append(f'{self.path}: {where}."{key}": {reason}')

    def object_plan(self, root: GraphQLInputObjectType, fields: Mapping[str, FieldValue], *,
                    prefix: str, where: str, own_columns: bool = True) -> ObjectPlan:
        nodes: list[LeafPlan | ListPlan] = []
        for key, value in fields.items():
            try:
                leaf = resolve_path(root, key)
            except PathError as exc:
                self.problem(where, key, str(exc))
                continue
            label = prefix + key
            node = self.node(leaf, key, label, value, where, own_columns)
            if node is not None:
                nodes.append(node)
        return ObjectPlan(tuple(nodes))

    def node(self, leaf: LeafType, key: str, label: str, value: FieldValue, where: str,
             own_columns: bool) -> LeafPlan | ListPlan | None:
        path = tuple(key.split("."))
        if leaf.item_object is not None:
            return self.list_node(leaf, key, label, value, where, own_columns)
        if isinstance(value, ChildrenValue | ItemsValue):
            self.problem(where, key, f"is a {leaf.describe()} value, not a list of objects: "
                                     "use a column, a const or a template")
            return None
        if isinstance(value, str):
            value = ColumnValue(column=value)
        chain = self.chain(value, where, key)
        if chain is None:
            return None
        steps, chain_defaults = chain
        node = LeafPlan(path=path, label=label, leaf=leaf, chain=steps, chain_defaults=chain_defaults,
                        default=value.default, required=value.required)
        if isinstance(value, ColumnValue):
            node = _replace(node, column=value.column)
            if own_columns:
                self.uses.append((label, value.column))
        elif isinstance(value, TemplateValue):
            template = self.template(value.template, where, key)
            if template is None:
                return None
            node = _replace(node, template=template)
            if own_columns:
                self.uses.extend((label, column) for column in template.columns)
        elif isinstance(value, ConstValue):
            node = _replace(node, const=value.const)
            self.check_value(value.const, node, where, key, "const", through_chain=True)
        if value.default is not None:
            self.check_value(value.default, node, where, key, "default", through_chain=False)
        self.check_map_targets(value, node, where, key)
        return node

    def list_node(self, leaf: LeafType, key: str, label: str, value: FieldValue, where: str,
                  own_columns: bool) -> ListPlan | None:
        assert leaf.item_object is not None
        item_type = leaf.item_object
        if isinstance(value, ChildrenValue):
            sub_where = f'{where}."{key}".fields'
            item = self.object_plan(item_type, value.fields, prefix=f"{label}[].", where=sub_where,
                                    own_columns=False)
            return ListPlan(tuple(key.split(".")), label, item, children=value.children,
                            required=value.required)
        if isinstance(value, ItemsValue):
            items = tuple(
                self.object_plan(item_type, fields, prefix=f"{label}[{i}].",
                                 where=f'{where}."{key}".items[{i}]', own_columns=own_columns)
                for i, fields in enumerate(value.items)
            )
            return ListPlan(tuple(key.split(".")), label, ObjectPlan(), items=items,
                            required=value.required)
        self.problem(where, key, f"is a list of {item_type.name}: build it with "
                                 "{children=\"...\", fields={...}} or {items=[{...}]}")
        return None

    def chain(self, value: ColumnValue | ConstValue | TemplateValue, where: str,
              key: str) -> tuple[tuple[Transform, ...], tuple[Any, ...]] | None:
        steps: list[Transform] = []
        defaults: list[Any] = []
        ok = True
        for index, spec in enumerate(value.transforms):
            try:
                steps.append(compile_transform(spec, self.kind.name))
            except ValueError as exc:
                self.problem(where, key, f"transforms[{index}]: {exc}")
                ok = False
                continue
            defaults.append(spec.value if isinstance(spec, DefaultTransform) else None)
        return (tuple(steps), tuple(defaults)) if ok else None

    def template(self, text: str, where: str, key: str) -> Template | None:
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            self.problem(where, key, f"template {text!r}: {exc}")
            return None
        parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name.strip() or spec or conversion):
                self.problem(where, key, f"template {text!r}: write plain column names between "
                                         "braces, e.g. \"{adresse} {code_postal}\"")
                return None
            parts.append((literal, name.strip() if name is not None else None))
        return Template(text, tuple(parts))

    def check_value(self, raw: Any, node: LeafPlan, where: str, key: str, what: str, *,
                    through_chain: bool) -> None:
        try:
            value = apply_chain(raw, node.chain, node.chain_defaults) if through_chain else raw
            coerce_leaf(value, node.leaf)
        except ValueError as exc:
            self.problem(where, key, f"{what} {raw!r} does not fit {node.leaf.describe()}: {exc}")

    def check_map_targets(self, value: ColumnValue | ConstValue | TemplateValue, node: LeafPlan,
                          where: str, key: str) -> None:
        """A value map that ends the chain must only produce values the field accepts."""
        if not value.transforms or not isinstance(value.transforms[-1], MapTransform):
            return
        spec = value.transforms[-1]
        targets = list(spec.values.values()) + ([spec.fallback] if spec.fallback is not None else [])
        for target in targets:
            try:
                coerce_leaf(target, node.leaf)
            except ValueError as exc:
                self.problem(where, key, f"map value {target!r}: {exc}")


def _replace(node: LeafPlan, **changes: Any) -> LeafPlan:
    from dataclasses import replace

    return replace(node, **changes)
