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
    "BlockSpec",
    "ChildrenValue",
    "ColumnValue",
    "ConditionSpec",
    "Conditions",
    "ConstValue",
    "FieldValue",
    "ItemsValue",
    "LifecycleSpec",
    "LookupSpec",
    "LookupValue",
    "MappingSpec",
    "RuleSpec",
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


class ConditionSpec(_Spec):
    """A test on one of the record's columns or on another mapped field's final value.

    Exactly one of ``column`` / ``field``; at most one of ``equals``, ``not_equals``, ``in``,
    ``empty``, ``matches``; with none of them the test is "is filled".
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str | None = None
    """The record's column (a child row's column inside ``children``), read as it is."""
    field: str | None = None
    """Another mapped field's path (``"emitter.type"``), read after its transforms."""
    equals: Scalar | None = None
    """Compared after stripping, case-insensitively; numbers numerically (``"12,0"`` = 12)."""
    not_equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    """One of these values (same comparison as ``equals``)."""
    empty: bool | None = None
    """``true``: the value is empty (blank or missing); ``false``: it is filled."""
    matches: str | None = None
    """A regular expression the whole value must match (Python ``re`` syntax)."""


def _conditions_tag(value: Any) -> str:
    return "conditions" if isinstance(value, list) else "condition"


Conditions = Annotated[
    Annotated[ConditionSpec, Tag("condition")] | Annotated[list[ConditionSpec], Tag("conditions")],
    Discriminator(_conditions_tag),
]
"""One condition, or a list of them: ``when`` needs all of them, ``unless`` any of them."""


class _Conditional(_Spec):
    when: Conditions | None = None
    """The field (or block) is built only when this holds; otherwise it is left out."""
    unless: Conditions | None = None
    """The field (or block) is left out when this holds."""


class _Leaf(_Conditional):
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


class LookupValue(_Leaf):
    lookup: str
    """Name of a table under ``[lookups]``."""
    by: str
    """The record's column holding the lookup key (``code_client``)."""
    column: str
    """The lookup table's column to read (``mail``)."""
    missing: Literal["reject", "empty"] = "reject"
    """A key absent from the table rejects the record (``reject``) or leaves the field empty."""


class ChildrenValue(_Conditional):
    children: str
    """Name of the child rows (SQL ``children`` query, ...) each becoming one list item."""
    fields: dict[str, FieldValue]
    required: bool = False


class ItemsValue(_Conditional):
    items: list[dict[str, FieldValue]]
    """Each item is built from the record's own columns; an item left entirely empty is dropped."""
    required: bool = False


def _value_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "shorthand"
    if isinstance(value, dict):
        for key in ("lookup", "column", "const", "template", "children", "items"):
            if key in value:
                return key
        return None  # reported as: needs one of column, const, template, children, items
    return type(value).__name__


FieldValue = Annotated[
    Annotated[str, Tag("shorthand")]
    | Annotated[LookupValue, Tag("lookup")]
    | Annotated[ColumnValue, Tag("column")]
    | Annotated[ConstValue, Tag("const")]
    | Annotated[TemplateValue, Tag("template")]
    | Annotated[ChildrenValue, Tag("children")]
    | Annotated[ItemsValue, Tag("items")],
    Discriminator(_value_tag),
]
"""A column name, or a table with one of ``column``, ``const``, ``template``, ``lookup``,
``children``, ``items``."""

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


class RuleSpec(_Conditional):
    """A check on a column, sent or not; a failing rule rejects the row with its message.

    An empty value passes every check but ``required`` (add ``required = true`` to refuse it).
    ``when`` / ``unless`` say when the rule applies (cross-column rules).
    """

    name: str | None = None
    """Shown in the rejection, e.g. ``"pickup date"``; default: the rule's position."""
    column: str
    check: Literal["required", "empty", "date", "number", "pattern", "one_of"]
    """``required``: filled; ``empty``: left blank; ``date``: a valid date (see ``not_future``,
    ``max_past_days``); ``number``: a number (see ``min``, ``max``); ``pattern``: matches
    ``regex``; ``one_of``: one of ``values``."""
    required: bool = False
    """Also refuse an empty value (for ``date``, ``number``, ``pattern``, ``one_of``)."""
    formats: list[str] | None = None
    """``date``: accepted spellings, as for the ``date`` transform; default all."""
    timezone: str = "Europe/Paris"
    not_future: bool = False
    """``date``: refuse a date after today."""
    max_past_days: int | None = Field(default=None, ge=0)
    """``date``: refuse a date more than this many days ago."""
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    """``pattern``: a regular expression the whole (stripped) value must match."""
    values: list[Scalar] | None = None
    """``one_of``: accepted values (compared stripped, case-insensitively)."""
    message: str | None = None
    """What the person fixing the row reads; the value and the reason are added to it."""


class LookupSpec(_Spec):
    """A reference table: a CSV file or an SQL query, indexed by one of its columns."""

    key: str
    """The table's column the ``by`` column of a field is matched against."""
    file: str | None = None
    """CSV file, relative to the mapping file's folder."""
    delimiter: str = "auto"
    encoding: str = "auto"
    url: str | None = None
    """SQLAlchemy URL (``${ENV_VAR}`` expanded) for ``query``."""
    query: str | None = None
    """A SELECT returning the key column and the columns fields read."""


class BlockSpec(_Conditional):
    """Conditions shared by every mapped field under a path prefix (``transporter``)."""


class MappingSpec(_Spec):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """Stable name: the state store keys records by (mapping name, record key)."""
    kind: KindName
    source: SourceSpec
    lifecycle: LifecycleSpec = Field(default_factory=LifecycleSpec)
    fields: dict[str, FieldValue]
    """Dotted path in the kind's input type (``"emitter.company.siret"``) → its value."""
    rules: list[RuleSpec] = Field(default_factory=list)
    """Checks over the record's columns, sent or not, run before anything is sent."""
    lookups: dict[str, LookupSpec] = Field(default_factory=dict)
    """Reference tables fields read with ``{ lookup = "name", by = "column", column = "..." }``."""
    blocks: dict[str, BlockSpec] = Field(default_factory=dict)
    """Path prefix (``"transporter"``) → conditions for every field under it: when they do not
    hold, the whole block is left out of the payload."""


def mapping_json_schema() -> str:
    """The JSON Schema editors use to complete and check mapping files (TOML via taplo, ...)."""
    schema = MappingSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trackdechets-connector mapping file"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
