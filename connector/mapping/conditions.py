"""``when`` / ``unless`` conditions: compiled once, evaluated as pure functions of a record.

A condition reads either one of the record's columns (raw, as the source gave it) or another
mapped field's final value (after its transforms and type conversion). No expression language:
each condition is one of a handful of tests, each a plain comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.mapping.spec import Conditions, ConditionSpec

__all__ = ["Condition", "compile_conditions", "condition_holds", "normalize", "read_path"]


@dataclass(frozen=True)
class Condition:
    """One test; ``negate`` turns a ``unless`` item into "must not hold"."""

    column: str | None
    field: str | None
    test: str
    """``equals``, ``not_equals``, ``in``, ``empty``, ``filled`` or ``matches``."""
    values: tuple[str, ...] = ()
    """Normalized comparison values (see ``normalize``)."""
    pattern: re.Pattern[str] | None = None
    negate: bool = False
    any_of: tuple[Condition, ...] = ()
    """For a ``unless`` list: the condition holds when none of these hold."""
    text: str = ""
    """Human form, e.g. ``column "type" = "AUTRE"``, for explain and messages."""

    @property
    def columns(self) -> tuple[str, ...]:
        own = (self.column,) if self.column else ()
        return own + tuple(c for inner in self.any_of for c in inner.columns)

    @property
    def fields(self) -> tuple[str, ...]:
        own = (self.field,) if self.field else ()
        return own + tuple(f for inner in self.any_of for f in inner.fields)


def normalize(value: Any) -> str:
    """The comparison form: blank → "", yes/no → "true"/"false", numbers numerically, text
    stripped and case-folded; so ``"12,0"`` equals ``12`` and ``" Autre "`` equals ``"AUTRE"``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    number = text.replace(",", ".").replace("\u00a0", "").replace(" ", "")
    if number and (number[0].isdigit() or number[0] in "+-.") and any(c.isdigit() for c in number):
        try:
            return format(Decimal(number).normalize(), "f")
        except InvalidOperation:
            pass
    return text.casefold()


def read_path(payload: Mapping[str, Any], path: str) -> Any:
    current: Any = payload
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _compile_one(spec: ConditionSpec) -> Condition:
    if (spec.column is None) == (spec.field is None):
        raise ValueError("a condition names exactly one of 'column' or 'field'")
    tests = {
        "equals": spec.equals, "not_equals": spec.not_equals, "in": spec.in_, "empty": spec.empty,
        "matches": spec.matches,
    }
    given = [name for name, value in tests.items() if value is not None]
    if len(given) > 1:
        raise ValueError(f"a condition has one test, found {', '.join(given)}")
    subject = f'column "{spec.column}"' if spec.column is not None else f'field "{spec.field}"'
    test = given[0] if given else "filled"
    values: tuple[str, ...] = ()
    pattern = None
    if test in ("equals", "not_equals"):
        raw = spec.equals if test == "equals" else spec.not_equals
        values = (normalize(raw),)
        text = f'{subject} {"=" if test == "equals" else "!="} {raw!r}'
    elif test == "in":
        values = tuple(normalize(v) for v in spec.in_ or ())
        text = f"{subject} in {list(spec.in_ or ())!r}"
    elif test == "empty":
        test = "empty" if spec.empty else "filled"
        text = f"{subject} is {test}"
    elif test == "matches":
        try:
            pattern = re.compile(str(spec.matches))
        except re.error as exc:
            raise ValueError(f"pattern {spec.matches!r} is not a valid regular expression: {exc}") from None
        text = f"{subject} matches {spec.matches!r}"
    else:
        text = f"{subject} is filled"
    return Condition(spec.column, spec.field, test, values, pattern, text=text)


def compile_conditions(when: Conditions | None, unless: Conditions | None) -> tuple[Condition, ...]:
    """Every condition that must hold; raises ValueError naming the bad one."""
    out: list[Condition] = []
    for name, specs in (("when", when), ("unless", unless)):
        if specs is None:
            continue
        items = specs if isinstance(specs, list) else [specs]
        compiled = []
        for index, spec in enumerate(items):
            try:
                compiled.append(_compile_one(spec))
            except ValueError as exc:
                where = f"{name}[{index}]" if isinstance(specs, list) else name
                raise ValueError(f"{where}: {exc}") from None
        if name == "when":
            out += compiled
        elif compiled:
            text = "not (" + " or ".join(c.text for c in compiled) + ")"
            out.append(Condition(None, None, "none_of", any_of=tuple(compiled), negate=True, text=text))
    return tuple(out)


def condition_holds(condition: Condition, values: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """Pure: ``values`` are the row's columns, ``root`` the payload built so far."""
    if condition.test == "none_of":
        return not any(condition_holds(c, values, root) for c in condition.any_of)
    if condition.column is not None:
        value = values.get(condition.column)
    else:
        value = read_path(root, condition.field or "")
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else ("" if not value else ",".join(map(str, value)))
    text = normalize(value)
    test = condition.test
    if test == "empty":
        return text == ""
    if test == "filled":
        return text != ""
    if test == "equals":
        return text == condition.values[0]
    if test == "not_equals":
        return text != condition.values[0]
    if test == "in":
        return text in condition.values
    if test == "matches":
        assert condition.pattern is not None
        return value is not None and condition.pattern.fullmatch(str(value).strip()) is not None
    raise AssertionError(test)  # pragma: no cover


def all_hold(conditions: Sequence[Condition], values: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return all(condition_holds(c, values, root) for c in conditions)
