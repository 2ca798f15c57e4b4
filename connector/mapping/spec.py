"""The mapping file as written by a company's IT team: pydantic models, nothing compiled yet.

Kept apart from the compiled form so that the file format (and its JSON Schema for editors) can
evolve by versions while the compiler stays free to change shape.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from connector.domain.kinds import KindName
from connector.sources.specs import SourceSpec

__all__ = [
    "ChildrenValue",
    "ColumnValue",
    "ConstValue",
    "FieldValue",
    "ItemsValue",
    "LifecycleSpec",
    "MappingSpec",
    "TemplateValue",
    "TransformSpec",
    "mapping_json_schema",
]

Scalar = str | int | float | bool


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- transforms ------------------------------------------------------------------------------


class DateTransform(_Spec):
    name: Literal["date"]
    formats: list[str] | None = None
    """Accepted spellings (``dd/mm/yyyy``, ``dd/mm/yyyy HH:MM``, ``yyyy-mm-dd``, ``iso``); default all."""
    timezone: str = "Europe/Paris"
    """How to read a time without offset; the output is always UTC with ``Z``."""


class MapTransform(_Spec):
    name: Literal["map"]
    values: dict[str, Scalar]
    """Source value → value sent; keys are compared after stripping, case-insensitively."""
    fallback: Scalar | None = None
    """Sent for a value missing from ``values``; without it such a value rejects the record."""
    keep_unknown: bool = False
    """Send values missing from ``values`` unchanged instead of rejecting the record."""


class DefaultTransform(_Spec):
    name: Literal["default"]
    value: Scalar | list[Scalar]


class SplitTransform(_Spec):
    name: Literal["split"]
    sep: str = ","
    """Items are stripped and empty ones dropped; later transforms apply to each item."""


SimpleTransformName = Literal[
    "date", "decimal", "int", "kg_to_t", "t_to_kg", "waste_code", "siret", "upper", "lower",
    "strip", "bool", "split", "operation_code",
]


def _transform_tag(value: Any) -> str:
    if isinstance(value, str):
        return "simple"
    if isinstance(value, dict):
        return str(value.get("name", "simple"))
    return str(getattr(value, "name", "simple"))


TransformSpec = Annotated[
    Annotated[SimpleTransformName, Tag("simple")]
    | Annotated[DateTransform, Tag("date")]
    | Annotated[MapTransform, Tag("map")]
    | Annotated[DefaultTransform, Tag("default")]
    | Annotated[SplitTransform, Tag("split")],
    Discriminator(_transform_tag),
]
"""A transform name (``"upper"``) or a table with ``name`` and its options."""


# --- field values ----------------------------------------------------------------------------


class _Leaf(_Spec):
    transforms: list[TransformSpec] = Field(default_factory=list)
    default: Scalar | list[Scalar] | None = None
    """Sent when the value is empty (before transforms run)."""
    required: bool = False
    """An empty value rejects the record instead of leaving the field out."""


class ColumnValue(_Leaf):
    column: str


class ConstValue(_Leaf):
    const: Scalar | list[Scalar]


class TemplateValue(_Leaf):
    template: str
    """``"{col_a} {col_b}"``: columns between braces, ``{{`` and ``}}`` for literal braces."""


class ChildrenValue(_Spec):
    children: str
    """Name of the child rows (SQL ``children`` query, ...) each becoming one list item."""
    fields: dict[str, FieldValue]
    required: bool = False


class ItemsValue(_Spec):
    items: list[dict[str, FieldValue]]
    """Each item is built from the record's own columns; an item left entirely empty is dropped."""
    required: bool = False


def _value_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "shorthand"
    if isinstance(value, dict):
        for key in ("column", "const", "template", "children", "items"):
            if key in value:
                return key
        return None  # reported as: needs one of column, const, template, children, items
    return type(value).__name__


FieldValue = Annotated[
    Annotated[str, Tag("shorthand")]
    | Annotated[ColumnValue, Tag("column")]
    | Annotated[ConstValue, Tag("const")]
    | Annotated[TemplateValue, Tag("template")]
    | Annotated[ChildrenValue, Tag("children")]
    | Annotated[ItemsValue, Tag("items")],
    Discriminator(_value_tag),
]
"""A column name, or a table with one of ``column``, ``const``, ``template``, ``children``, ``items``."""

ChildrenValue.model_rebuild()
ItemsValue.model_rebuild()


# --- the file --------------------------------------------------------------------------------


class LifecycleSpec(_Spec):
    seal: bool = True
    """After the draft is created, seal it (BSDD ``markAsSealed``) or publish it (``publishX``)."""
    key_reuse: Literal["conflict", "update"] = "conflict"
    """A key that comes back with another emitter SIRET or waste code once its BSD is sealed:
    ``conflict`` holds it for a person (nothing sent); ``update`` rewrites the BSD (only before any
    signature: after one, a change is always a conflict)."""


class MappingSpec(_Spec):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """Stable name: the state store keys records by (mapping name, record key)."""
    kind: KindName
    source: SourceSpec
    lifecycle: LifecycleSpec = Field(default_factory=LifecycleSpec)
    fields: dict[str, FieldValue]
    """Dotted path in the kind's input type (``"emitter.company.siret"``) → its value."""


def mapping_json_schema() -> str:
    """The JSON Schema editors use to complete and check mapping files (TOML via taplo, ...)."""
    schema = MappingSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trackdechets-connector mapping file"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
