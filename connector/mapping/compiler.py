"""Turn a validated ``MappingSpec`` into a ``CompiledMapping``: every path, template and transform
checked against the schema once, every problem reported at once.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from graphql import GraphQLInputObjectType, GraphQLSchema

from connector.domain.kinds import KINDS, BsdKind
from connector.errors import MappingError
from connector.mapping.compiled import CompiledMapping, MappingResult
from connector.mapping.conditions import Condition, compile_conditions
from connector.mapping.lookups import LookupRef
from connector.mapping.plans import LeafPlan, ListPlan, ObjectPlan, Template
from connector.mapping.rules import Rule, compile_rule
from connector.mapping.schema_paths import LeafType, PathError, coerce_leaf, resolve_path
from connector.mapping.spec import (
    ChildrenValue,
    ColumnValue,
    ConstValue,
    DefaultTransform,
    FieldValue,
    ItemsValue,
    LookupValue,
    MappingSpec,
    MapTransform,
    TemplateValue,
)
from connector.mapping.transforms import Transform, apply_chain, compile_transform

__all__ = ["CompiledMapping", "MappingResult", "compile_mapping"]


_TODO = "TODO"


def _where(label: str) -> str:
    return label if label == "source.key" else f'fields."{label.split("[")[0]}"'


def compile_mapping(spec: MappingSpec, schema: GraphQLSchema, *, path: str) -> CompiledMapping:
    """Check every field against the schema; raise one MappingError with all the problems."""
    kind = KINDS[spec.kind]
    problems: list[str] = []
    root = schema.get_type(kind.input_type)
    plan = ObjectPlan()
    uses: list[tuple[str, str]] = []
    compiler = _Compiler(kind, path, problems, uses, spec)
    if not isinstance(root, GraphQLInputObjectType):
        problems.append(f"{path}: kind: {kind.name} needs input type {kind.input_type}, "
                        "which the target's schema does not have")
    else:
        plan = compiler.object_plan(root, spec.fields, prefix="", where="fields")
        plan = compiler.apply_blocks(plan)
        plan = compiler.order_by_dependencies(plan)
    rules, rule_uses = compiler.rules()
    compiler.check_lookups()
    # A draft written by ``td-connector init`` cannot run before its TODOs are filled.
    todo = [label for label, column in uses if column == _TODO]
    todo += ["source.key"] if _TODO in spec.source.key else []
    problems += [f'{path}: {_where(label)}: still to fill ("{_TODO}" left by td-connector init): name a '
                 "column, a { const = ... } or a lookup" for label in dict.fromkeys(todo)]
    if problems:
        raise MappingError(f"{path}: {len(problems)} problem(s) in the mapping", problems)
    return CompiledMapping(
        name=spec.name, path=path, kind=kind, source=spec.source,
        key_columns=tuple(spec.source.key), seal=spec.lifecycle.seal, plan=plan,
        column_uses=tuple(uses), spec=spec, rules=rules, rule_uses=rule_uses,
    )


class _Compiler:
    def __init__(self, kind: BsdKind, path: str, problems: list[str],
                 uses: list[tuple[str, str]], spec: MappingSpec) -> None:
        self.kind = kind
        self.path = path
        self.problems = problems
        self.uses = uses
        self.spec = spec
        self.field_refs: list[tuple[str, str]] = []
        """(where, referenced field) of every ``field`` condition, checked once all are known."""

    def conditions(self, value: Any, where: str, key: str, label: str,
                   own_columns: bool) -> tuple[Condition, ...] | None:
        if isinstance(value, str) or (value.when is None and value.unless is None):
            return ()
        try:
            compiled = compile_conditions(value.when, value.unless)
        except ValueError as exc:
            self.problem(where, key, str(exc))
            return None
        for condition in compiled:
            if own_columns:
                self.uses.extend((label, column) for column in condition.columns)
            self.field_refs.extend((f'{where}."{key}"', ref) for ref in condition.fields)
        return compiled

    def apply_blocks(self, plan: ObjectPlan) -> ObjectPlan:
        """Each ``[blocks."prefix"]`` condition added to every top-level field under the prefix."""
        nodes = list(plan.fields)
        for prefix, block in self.spec.blocks.items():
            where = f'blocks."{prefix}"'
            try:
                conditions = compile_conditions(block.when, block.unless)
            except ValueError as exc:
                self.problems.append(f"{self.path}: {where}: {exc}")
                continue
            under = [i for i, n in enumerate(nodes) if n.label == prefix or n.label.startswith(prefix + ".")]
            if not under:
                mapped = sorted({n.label.split(".")[0] for n in nodes})
                self.problems.append(f"{self.path}: {where}: no mapped field under {prefix!r} "
                                     f"(top-level blocks mapped: {', '.join(mapped)})")
                continue
            for condition in conditions:
                self.uses.extend((prefix, column) for column in condition.columns)
                self.field_refs.extend((where, ref) for ref in condition.fields)
            for index in under:
                nodes[index] = replace(nodes[index], conditions=nodes[index].conditions + conditions)
        return ObjectPlan(tuple(nodes))

    def order_by_dependencies(self, plan: ObjectPlan) -> ObjectPlan:
        """Fields read by ``field`` conditions are built first; such a field must not itself
        depend on another field's value (one level, so the order is always clear)."""
        dependent = {n.label for n in plan.fields if _reads_fields(n)}
        mapped = {n.label for n in plan.fields if isinstance(n, LeafPlan)}
        for where, ref in self.field_refs:
            if ref in dependent:
                self.problems.append(f"{self.path}: {where}: field {ref!r} has a condition on another "
                                     "field itself; test that field's column instead")
            elif ref not in mapped:
                guess = difflib.get_close_matches(ref, sorted(mapped), n=1, cutoff=0.6)
                hint = f' (did you mean "{guess[0]}"?)' if guess else ""
                self.problems.append(f"{self.path}: {where}: condition on field {ref!r}, which the "
                                     f"mapping does not set at the top level{hint}")
        first = [n for n in plan.fields if n.label not in dependent]
        return ObjectPlan(tuple(first + [n for n in plan.fields if n.label in dependent]))

    def rules(self) -> tuple[tuple[Rule, ...], tuple[tuple[str, str], ...]]:
        compiled: list[Rule] = []
        uses: list[tuple[str, str]] = []
        for index, spec in enumerate(self.spec.rules):
            where = f"rules[{index}]"
            try:
                rule = compile_rule(spec, index)
            except ValueError as exc:
                self.problems.append(f"{self.path}: {where}: {exc}")
                continue
            compiled.append(rule)
            uses.append((f"{where}.column", rule.column))
            uses.extend((f"{where} condition", c) for c in rule.columns[1:])
        return tuple(compiled), tuple(uses)

    def check_lookups(self) -> None:
        for name, lookup in self.spec.lookups.items():
            where = f'{self.path}: lookups."{name}"'
            if lookup.file is None and (lookup.url is None or lookup.query is None):
                self.problems.append(f'{where}: give "file" (a CSV file) or "url" and "query" (SQL)')
            elif lookup.file is not None and (lookup.url is not None or lookup.query is not None):
                self.problems.append(f'{where}: "file" and "url"/"query" exclude each other')

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
        conditions = self.conditions(value, where, key, label, own_columns)
        chain = self.chain(value, where, key)
        if chain is None or conditions is None:
            return None
        steps, chain_defaults = chain
        node = LeafPlan(path=path, label=label, leaf=leaf, chain=steps, chain_defaults=chain_defaults,
                        default=value.default, required=value.required, conditions=conditions)
        if isinstance(value, LookupValue):
            if value.lookup not in self.spec.lookups:
                known = ", ".join(sorted(self.spec.lookups)) or "none defined under [lookups]"
                self.problem(where, key, f'unknown lookup "{value.lookup}" (lookups: {known})')
                return None
            node = _replace(node, lookup=LookupRef(value.lookup, value.by, value.column, value.missing))
            if own_columns:
                self.uses.append((label, value.by))
        elif isinstance(value, ColumnValue):
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
        conditions = self.conditions(value, where, key, label, own_columns) or ()
        if isinstance(value, ChildrenValue):
            sub_where = f'{where}."{key}".fields'
            item = self.object_plan(item_type, value.fields, prefix=f"{label}[].", where=sub_where,
                                    own_columns=False)
            return ListPlan(tuple(key.split(".")), label, item, children=value.children,
                            required=value.required, conditions=conditions)
        if isinstance(value, ItemsValue):
            items = tuple(
                self.object_plan(item_type, fields, prefix=f"{label}[{i}].",
                                 where=f'{where}."{key}".items[{i}]', own_columns=own_columns)
                for i, fields in enumerate(value.items)
            )
            return ListPlan(tuple(key.split(".")), label, ObjectPlan(), items=items,
                            required=value.required, conditions=conditions)
        self.problem(where, key, f"is a list of {item_type.name}: build it with "
                                 "{children=\"...\", fields={...}} or {items=[{...}]}")
        return None

    def chain(self, value: ColumnValue | ConstValue | TemplateValue | LookupValue, where: str,
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

    def check_map_targets(self, value: ColumnValue | ConstValue | TemplateValue | LookupValue,
                          node: LeafPlan,
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
    return replace(node, **changes)


def _reads_fields(node: LeafPlan | ListPlan) -> bool:
    """Whether the node (or anything inside a list) has a ``field`` condition."""
    if any(c.fields for c in node.conditions):
        return True
    if isinstance(node, ListPlan):
        plans = (node.item, *node.items)
        return any(_reads_fields(inner) for plan in plans for inner in plan.fields)
    return False
