"""Row rules: checks over a record's columns, whether or not those columns are sent.

Each rule is compiled once from ``[[rules]]`` and evaluated as a pure function of the row and of
"now" (given by the caller, so that a test or ``explain`` can pin it). A failing rule rejects the
row with its own message, the value it read and every column it looked at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.mapping.conditions import Condition, all_hold, compile_conditions, normalize
from connector.mapping.parsing import DATE_FORMATS, parse_datetime, parse_decimal, strptime_pattern
from connector.mapping.spec import RuleSpec
from connector.mapping.transforms import is_empty

__all__ = ["Rule", "RuleVerdict", "compile_rule", "run_rule"]

_CHECK_OPTIONS: dict[str, frozenset[str]] = {
    "required": frozenset(),
    "empty": frozenset(),
    "date": frozenset({"formats", "timezone", "not_future", "max_past_days"}),
    "number": frozenset({"min", "max"}),
    "pattern": frozenset({"regex"}),
    "one_of": frozenset({"values"}),
}
_ALL_OPTIONS = frozenset().union(*_CHECK_OPTIONS.values())


@dataclass(frozen=True)
class Rule:
    label: str
    column: str
    check: str
    required: bool
    conditions: tuple[Condition, ...]
    message: str | None
    patterns: tuple[str, ...] = ()
    zone: ZoneInfo | None = None
    not_future: bool = False
    max_past: timedelta | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    regex: re.Pattern[str] | None = None
    values: tuple[str, ...] = ()
    shown_values: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the rule reads: its own, then those of its conditions."""
        out = [self.column]
        for condition in self.conditions:
            out += [c for c in condition.columns if c not in out]
        return tuple(out)


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    applied: bool
    """False when its ``when`` / ``unless`` conditions left it out."""
    reason: str | None
    """None when the row passes."""

    def message(self) -> str:
        """``rule "pickup date" (column "date_enlevement"; also read "type"): reason``."""
        extra = [c for c in self.rule.columns if c != self.rule.column]
        read = f'column "{self.rule.column}"' + (
            "; also read " + ", ".join(f'"{c}"' for c in extra) if extra else ""
        )
        return f"rule {self.rule.label} ({read}): {self.reason}"


def compile_rule(spec: RuleSpec, index: int) -> Rule:
    """The rule ready to run; ValueError naming the option for an inconsistent one."""
    given = {name for name in _ALL_OPTIONS if name in spec.model_fields_set}
    stray = sorted(given - _CHECK_OPTIONS[spec.check])
    if stray:
        raise ValueError(f'{", ".join(stray)} does not apply to check "{spec.check}"')
    label = f'"{spec.name}"' if spec.name else f"#{index + 1}"
    conditions = compile_conditions(spec.when, spec.unless)
    if any(c.fields for c in conditions):
        raise ValueError("a rule's conditions read columns, not mapped fields")
    base: dict[str, Any] = {
        "label": label, "column": spec.column, "check": spec.check, "required": spec.required,
        "conditions": conditions, "message": spec.message,
    }
    if spec.check == "date":
        try:
            base["zone"] = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {spec.timezone!r} (e.g. 'Europe/Paris')") from None
        base["patterns"] = tuple(strptime_pattern(f) for f in spec.formats or DATE_FORMATS)
        base["not_future"] = spec.not_future
        if spec.max_past_days is not None:
            base["max_past"] = timedelta(days=spec.max_past_days)
    elif spec.check == "number":
        base["minimum"] = Decimal(str(spec.min)) if spec.min is not None else None
        base["maximum"] = Decimal(str(spec.max)) if spec.max is not None else None
        if base["minimum"] is not None and base["maximum"] is not None and base["minimum"] > base["maximum"]:
            raise ValueError(f"min {_show(base['minimum'])} is greater than max {_show(base['maximum'])}")
    elif spec.check == "pattern":
        if not spec.regex:
            raise ValueError('check "pattern" needs a "regex"')
        try:
            base["regex"] = re.compile(spec.regex)
        except re.error as exc:
            raise ValueError(f"regex {spec.regex!r} is not a valid regular expression: {exc}") from None
    elif spec.check == "one_of":
        if not spec.values:
            raise ValueError('check "one_of" needs a non-empty "values" list')
        base["values"] = tuple(normalize(v) for v in spec.values)
        base["shown_values"] = tuple(str(v) for v in spec.values)
    return Rule(**base)


def run_rule(rule: Rule, values: Mapping[str, Any], now: datetime) -> RuleVerdict:
    """Pure: the verdict of ``rule`` on a row's ``values`` at ``now`` (an aware datetime)."""
    if rule.conditions and not all_hold(rule.conditions, values, {}):
        return RuleVerdict(rule, False, None)
    raw = values.get(rule.column)
    reason = _reason(rule, raw, now)
    if reason is not None and rule.message:
        reason = f"{rule.message} ({reason})"
    return RuleVerdict(rule, True, reason)


def _reason(rule: Rule, raw: Any, now: datetime) -> str | None:
    if rule.check == "empty":
        return None if is_empty(raw) else f'must be empty, found "{raw}"'
    if is_empty(raw):
        return "is empty" if rule.required or rule.check == "required" else None
    if rule.check == "required":
        return None
    if rule.check == "date":
        return _date_reason(rule, raw, now)
    if rule.check == "number":
        try:
            number = parse_decimal(raw)
        except ValueError as exc:
            return str(exc)
        if rule.minimum is not None and number < rule.minimum:
            return f'"{raw}" is below the minimum {_show(rule.minimum)}'
        if rule.maximum is not None and number > rule.maximum:
            return f'"{raw}" is above the maximum {_show(rule.maximum)}'
        return None
    if rule.check == "pattern":
        assert rule.regex is not None
        if rule.regex.fullmatch(str(raw).strip()) is None:
            return f'"{raw}" does not match {rule.regex.pattern!r}'
        return None
    if rule.check == "one_of":
        if normalize(raw) not in rule.values:
            return f'"{raw}" is not one of {", ".join(rule.shown_values)}'
        return None
    raise AssertionError(rule.check)  # pragma: no cover


def _show(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _date_reason(rule: Rule, raw: Any, now: datetime) -> str | None:
    assert rule.zone is not None
    try:
        moment = parse_datetime(raw, rule.patterns, rule.zone)
    except ValueError as exc:
        return str(exc)
    day = moment.astimezone(rule.zone).date()
    today = now.astimezone(rule.zone).date()
    if rule.not_future and day > today:
        return f'"{raw}" is in the future (today is {today.strftime("%d/%m/%Y")})'
    if rule.max_past is not None and day < today - rule.max_past:
        return f'"{raw}" is more than {rule.max_past.days} days ago'
    return None
