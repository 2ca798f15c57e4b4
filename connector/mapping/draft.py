"""A commented mapping draft from a sample of rows: what ``td-connector init`` writes.

Pure: columns and sample values in, TOML text out. Each column is recognised by its values first
(a SIRET passes the Luhn check, a waste code is six digits with an optional ``*``, dates, decimal
weights, e-mails, R/D codes, yes/no) and by its name second; the kind's required fields come first,
and those no column fits are written ``"TODO"``, which ``td-connector check`` reports as still to
fill. The draft always loads: every path it writes exists in the kind's input type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from graphql import GraphQLInputObjectType, GraphQLSchema

from connector.domain.identifiers import clean_siret, siret_problem
from connector.domain.kinds import KINDS, KindName
from connector.domain.wastes import normalize_waste_code
from connector.mapping.checks import (
    _BSDD_EMITTER_CONTACT,
    _BSDD_SEAL_REQUIRED,
    _WASTE_CODE_PATH,
    _WEIGHT_PATHS,
)
from connector.mapping.parsing import (
    DATE_FORMATS,
    parse_bool,
    parse_datetime,
    parse_decimal,
    strptime_pattern,
)
from connector.mapping.schema_paths import PathError, leaf_paths, resolve_path
from connector.mapping.transforms import is_empty, normalize_operation_code

__all__ = ["TODO", "ColumnFacts", "draft_mapping", "profile_column", "required_fields"]

TODO = "TODO"
"""The column name a draft gives a field still to fill; ``check`` names each one left."""

_PATTERNS = tuple(strptime_pattern(f) for f in DATE_FORMATS)
_MAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    example: str | None
    filled: int
    unique: bool
    looks_like: str | None
    """``siret``, ``waste_code``, ``date``, ``number``, ``mail``, ``operation``, ``bool`` or None."""


def profile_column(name: str, values: Sequence[Any]) -> ColumnFacts:
    """What the sample's non-empty values of one column have in common."""
    filled = [str(v).strip() for v in values if not is_empty(v)]
    example = filled[0] if filled else None
    unique = bool(filled) and len(set(filled)) == len(filled) == len(values)
    looks_like = None
    for label, test in _TESTS:
        if filled and all(test(v) for v in filled):
            looks_like = label
            break
    return ColumnFacts(name, example, len(filled), unique, looks_like)


def _is_siret(value: str) -> bool:
    return siret_problem(clean_siret(value)) is None


def _is_waste_code(value: str) -> bool:
    try:
        normalize_waste_code(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        parse_datetime(value, _PATTERNS, UTC)
    except (ValueError, TypeError):
        return False
    return not re.fullmatch(r"\d+([.,]\d+)?", value)


def _is_number(value: str) -> bool:
    try:
        parse_decimal(value)
    except ValueError:
        return False
    return True


def _is_operation(value: str) -> bool:
    try:
        normalize_operation_code(value, KindName.BSDD)
    except ValueError:
        return False
    return True


def _is_bool(value: str) -> bool:
    try:
        parse_bool(value)
    except ValueError:
        return False
    return value.lower() not in ("1", "0")


_TESTS = (
    ("siret", _is_siret), ("waste_code", _is_waste_code), ("operation", _is_operation),
    ("date", _is_date), ("mail", lambda v: _MAIL.match(v) is not None), ("bool", _is_bool),
    ("number", _is_number),
)

_ROLE_HINTS = (
    ("transporter", ("transp", "chauffeur", "camion")),
    ("recipient", ("dest", "recip", "exutoire", "installation", "traitement", "centre")),
    ("emitter", ("prod", "emet", "émet", "client", "detenteur", "détenteur")),
)
_COMPANY_HINTS = (
    ("siret", ("siret",)), ("mail", ("mail", "courriel")), ("phone", ("tel", "tél", "phone")),
    ("contact", ("contact", "interlocuteur")), ("address", ("adresse", "address", "adr_")),
    ("name", ("raison", "nom", "name", "societe", "société")),
)


_ADR = re.compile(r"(^|[_\s-])(adr|onu)([_\s-]|$)")
_WEIGHT_HINTS = ("poids", "weight", "masse", "quantit", "kg", "tonn")


def required_fields(kind: KindName, seal: bool, root: GraphQLInputObjectType) -> list[str]:
    """The fields a draft asks for first: what sealing a BSDD needs, the essentials elsewhere."""
    known = set(leaf_paths(root))
    if kind is KindName.BSDD and seal:
        wanted = [*_BSDD_SEAL_REQUIRED, *_BSDD_EMITTER_CONTACT, "recipient.processingOperation",
                  "recipient.cap", "wasteDetails.pop", "wasteDetails.consistences",
                  "wasteDetails.packagingInfos"]
    else:
        company = ("siret", "name", "address", "contact", "phone", "mail")
        wanted = [f"emitter.company.{f}" for f in company]
        wanted += [_WASTE_CODE_PATH[kind], *_WEIGHT_PATHS[kind]]
        wanted += [f"destination.company.{f}" for f in company]
    return [p for p in dict.fromkeys(wanted) if p in known]


def _role(name: str, kind: KindName) -> str | None:
    lowered = name.lower()
    for role, hints in _ROLE_HINTS:
        if any(h in lowered for h in hints):
            return "recipient" if role == "recipient" and kind is KindName.BSDD else (
                "destination" if role == "recipient" else role)
    return None


def _suggest(facts: ColumnFacts, kind: KindName, taken: set[str]) -> tuple[str, str, str] | None:
    """(path, TOML value, why) for one column, or None."""
    name = facts.name.lower()
    role = _role(name, kind) or "emitter"
    waste_path = _WASTE_CODE_PATH[kind]
    weight_path = _WEIGHT_PATHS[kind][0]
    col = f'"{facts.name}"'
    if facts.looks_like == "siret":
        for who in (role, "emitter", "recipient" if kind is KindName.BSDD else "destination", "transporter"):
            path = f"{who}.company.siret"
            if path not in taken:
                return path, f'{{ column = {col}, transforms = ["siret"] }}', "14 digits, Luhn checked"
    if facts.looks_like == "waste_code":
        return waste_path, f'{{ column = {col}, transforms = ["waste_code"] }}', "six-digit waste codes"
    if facts.looks_like == "operation":
        path = "recipient.processingOperation" if kind is KindName.BSDD else "destination.operation.code"
        return path, f'{{ column = {col}, transforms = ["operation_code"] }}', "R/D operation codes"
    if facts.looks_like == "number" and any(h in name for h in _WEIGHT_HINTS):
        unit = KINDS[kind].weight_unit
        convert = ', "kg_to_t"' if unit == "t" and "kg" in name else (
            ', "t_to_kg"' if unit == "kg" and ("tonn" in name or name.endswith("_t")) else "")
        return weight_path, f'{{ column = {col}, transforms = ["decimal"{convert}] }}', \
            f"decimal numbers named like a weight (the kind counts in {unit})"
    if facts.looks_like == "bool" and "adr" in name and kind is KindName.BSDD:
        return "wasteDetails.isSubjectToADR", f'{{ column = {col}, transforms = ["bool"] }}', "yes/no values"
    if _ADR.search(name) and kind is KindName.BSDD:
        return "wasteDetails.onuCode", col, "named like the ADR mention"
    if name == "cap" or name.startswith("cap_") or name.endswith("_cap"):
        return ("recipient.cap", col, "named like a CAP") if kind is KindName.BSDD else None
    if any(h in name for h in ("designation", "désignation", "libelle", "libellé", "denomination")):
        path = "wasteDetails.name" if kind is KindName.BSDD else "waste.materialName"
        return path, col, "named like a waste name"
    if facts.looks_like == "mail":
        return f"{role}.company.mail", col, "e-mail addresses"
    for field, hints in _COMPANY_HINTS:
        if field != "siret" and any(h in name for h in hints):
            return f"{role}.company.{field}", col, "by its name"
    return None


_PACKAGING = ("conditionnement", "emballage", "contenant", "packaging")
_COUNT = ("nb", "nombre", "colis", "count")
_OTHER = ("autre", "precision", "précision", "other")
_REFERENCE = re.compile(r"(^|_)(code|id|ref)(_|$)")


def _enum_note(root: GraphQLInputObjectType, path: str) -> str:
    try:
        leaf = resolve_path(root, path)
    except PathError:
        return ""
    if leaf.enum_values is None:
        return ""
    values = ", ".join(leaf.enum_values[:8]) + (", ..." if len(leaf.enum_values) > 8 else "")
    return f"   # {leaf.describe()}: {values} (a column with a map, or a const)"


def draft_mapping(*, name: str, kind: KindName, schema: GraphQLSchema, source_toml: str,
                  columns: Sequence[str], rows: Sequence[Mapping[str, Any]], key: str | None = None,
                  seal: bool = True, origin: str = "") -> str:
    """The TOML text of a mapping draft; every path in it exists in the kind's input type."""
    root = schema.get_type(KINDS[kind].input_type)
    assert isinstance(root, GraphQLInputObjectType)
    known = set(leaf_paths(root))
    facts = [profile_column(c, [r.get(c) for r in rows]) for c in columns]
    key = key or next((f.name for f in facts if f.unique), None)
    suggestions: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    for fact in facts:
        suggestion = _suggest(fact, kind, set(suggestions))
        if suggestion and suggestion[0] in known and suggestion[0] not in suggestions:
            suggestions[suggestion[0]] = (suggestion[1], f'column "{fact.name}": {suggestion[2]}')
            used.add(fact.name)
    required = required_fields(kind, seal, root)
    out = [
        f"# Mapping draft written by `td-connector init`{' from ' + origin if origin else ''}.",
        '# Fields set to "TODO" are still to fill (a column, { const = ... } or a lookup):',
        "# `td-connector check` lists every one left. Paths: docs/mapping.md; recipes: docs/cookbook.md.",
        "version = 1",
        f'name = "{name}"',
        f'kind = "{kind.value}"',
        "",
        source_toml.rstrip(),
        f'key = ["{key or TODO}"]' + ("   # unique in the sample" if key else "   # the row's identifier"),
        "",
        "[lifecycle]",
        f"seal = {'true' if seal else 'false'}",
        "",
        f"# Columns found ({len(rows)} sample row(s)):",
    ]
    width = max((len(f.name) for f in facts), default=0)
    for fact in facts:
        note = fact.looks_like or ("empty in the sample" if not fact.filled else "text")
        example = f'e.g. "{fact.example}"' if fact.example is not None else ""
        out.append(f"#   {fact.name:<{width}}  {note:<11} {example}".rstrip())
    out += ["", "[fields]"]
    required_label = "sealing (markAsSealed)" if kind is KindName.BSDD and seal else "a usable BSD"
    out.append(f"# Required for {required_label}:")
    for path in required:
        if path in suggestions:
            value, why = suggestions.pop(path)
            out.append(f'"{path}" = {value}   # {why}')
        elif path == "wasteDetails.packagingInfos":
            kind_col = next((f.name for f in facts if any(h in f.name.lower() for h in _PACKAGING)), TODO)
            count_col = next((f.name for f in facts if f.looks_like == "number"
                              and any(h in f.name.lower() for h in _COUNT)), TODO)
            other_col = next((f.name for f in facts if any(h in f.name.lower() for h in _OTHER)), None)
            used.update({kind_col, count_col, other_col or kind_col})
            quantity = (f'{{ column = "{count_col}", transforms = ["int"] }}' if count_col != TODO
                        else f'"{TODO}"')
            other = (f', other = {{ column = "{other_col}", when = {{ column = "{kind_col}", '
                     'equals = "AUTRE" } }' if other_col else "")
            out.append(f'"{path}" = {{ items = [{{ type = "{kind_col}", quantity = {quantity}{other} }}] }}')
        else:
            out.append(f'"{path}" = "{TODO}"' + _enum_note(root, path))
    if suggestions:
        out += ["", "# Other fields suggested from the columns:"]
        out += [f'"{path}" = {value}   # {why}' for path, (value, why) in suggestions.items()]
    leftover = [f for f in facts if f.name not in used and f.name != key]
    dates = [f for f in leftover if f.looks_like == "date"]
    if leftover:
        out += ["", "# Columns not used yet: " + ", ".join(f.name for f in leftover)]
    references = [f.name for f in leftover
                  if _REFERENCE.search(f.name.lower()) and f.looks_like != "waste_code"]
    if references:
        out += [f"# {', '.join(references)}: codes of another table? Read it with a [lookups] table and "
                '{ lookup = "...", by = "<column>", column = "..." } (docs/cookbook.md, lookups).']
    for fact in dates:
        out += ["", "# A date the create does not send: checked anyway (delete if not wanted).",
                "[[rules]]", f'name = "{fact.name}"', f'column = "{fact.name}"', 'check = "date"',
                "not_future = true"]
    return "\n".join(out) + "\n"
