"""Pure helpers that pack work into as few HTTP requests as the server's caps allow.

Two different tools for two different cases. Mutations travel as JSON-array batches (``chunk``):
each operation keeps its own result, so one failure cannot hide the ids of the others. Reads may
be merged into one document with aliases (``merge_reads``): a failing nullable root field only
nulls itself, but a failing non-null one (``forms``, the ``bsdXs`` connections) nulls the whole
document, and the errors' paths tell which alias failed (``TrackdechetsClient.query_many`` asks
the others again). Both are capped at 5 by the server; a JSON array of merged documents carries
25 reads in one request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

__all__ = ["MAX_OPERATIONS", "MergedRead", "ReadPart", "chunk", "merge_reads"]

MAX_OPERATIONS = 5
"""Both server caps: items of a JSON array body, and root fields of one document."""

T = TypeVar("T")


def chunk(items: Iterable[T], size: int = MAX_OPERATIONS) -> list[list[T]]:
    """Split ``items`` into consecutive lists of at most ``size``."""
    if not 1 <= size <= MAX_OPERATIONS:
        raise ValueError(f"size must be between 1 and {MAX_OPERATIONS}, got {size}")
    out: list[list[T]] = []
    for item in items:
        if not out or len(out[-1]) == size:
            out.append([])
        out[-1].append(item)
    return out


@dataclass(frozen=True)
class ReadPart:
    """One aliased root field's share of a merged answer."""

    data: Any
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class MergedRead:
    """A document of up to 5 aliased read fields (``r0``..``r4``) and how to split its answer."""

    document: str
    variables: dict[str, Any]
    aliases: tuple[str, ...]

    def split(
        self, data: Mapping[str, Any] | None, errors: Sequence[Mapping[str, Any]] = ()
    ) -> list[ReadPart]:
        """Give each field back its data and the errors whose ``path`` starts with its alias.

        An error without a path (the whole document failed) belongs to every field.
        """
        parts = []
        for alias in self.aliases:
            mine = [
                dict(e) for e in errors
                if not e.get("path") or e["path"][0] == alias
            ]
            parts.append(ReadPart(data=(data or {}).get(alias), errors=mine))
        return parts


class _Renamer(Visitor):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def enter_variable(self, node: VariableNode, *_: Any) -> VariableNode:
        return VariableNode(name=NameNode(value=f"{self.prefix}_{node.name.value}"))


def merge_reads(fields: Sequence[tuple[str, Mapping[str, Any]]]) -> MergedRead:
    """Merge up to 5 one-field query documents into one, aliasing each field ``r<i>``.

    Each input is ``(document, variables)`` where the document is a query with exactly one root
    field, e.g. ``query($id: ID!) { form(id: $id) { id status } }``. Variables are renamed per
    alias (``$id`` → ``$r0_id``) so that two fields may use the same name with different values.
    Fragments are shared by name; two different fragments with one name are refused.
    """
    if not 1 <= len(fields) <= MAX_OPERATIONS:
        raise ValueError(f"merge_reads takes 1 to {MAX_OPERATIONS} fields, got {len(fields)}")
    selections: list[FieldNode] = []
    var_defs: list[Any] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    variables: dict[str, Any] = {}
    aliases = tuple(f"r{i}" for i in range(len(fields)))
    for alias, (document, values) in zip(aliases, fields, strict=True):
        ast = visit(parse(document, no_location=True), _Renamer(alias))
        ops = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation is not OperationType.QUERY:
            raise ValueError(f"{alias}: expected exactly one query operation")
        roots = ops[0].selection_set.selections
        if len(roots) != 1 or not isinstance(roots[0], FieldNode):
            raise ValueError(f"{alias}: expected exactly one root field, found {len(roots)}")
        root = roots[0]
        selections.append(
            FieldNode(
                alias=NameNode(value=alias),
                name=root.name,
                arguments=root.arguments,
                directives=root.directives,
                selection_set=root.selection_set,
            )
        )
        var_defs.extend(ops[0].variable_definitions or ())
        for frag in (d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)):
            known = fragments.setdefault(frag.name.value, frag)
            if print_ast(known) != print_ast(frag):
                raise ValueError(f"{alias}: fragment {frag.name.value} differs from an earlier one")
        declared = {d.variable.name.value.removeprefix(f"{alias}_")
                    for d in ops[0].variable_definitions or ()}
        unknown = set(values) - declared
        if unknown:
            raise ValueError(f"{alias}: variables not declared by the document: {sorted(unknown)}")
        variables.update({f"{alias}_{name}": value for name, value in values.items()})

    var_text = ", ".join(print_ast(d) for d in var_defs)
    body = "\n".join("  " + print_ast(s).replace("\n", "\n  ") for s in selections)
    head = f"query MergedRead({var_text})" if var_text else "query MergedRead"
    document = head + " {\n" + body + "\n}\n"
    document += "".join("\n" + print_ast(f) + "\n" for f in fragments.values())
    return MergedRead(document=document, variables=variables, aliases=aliases)
