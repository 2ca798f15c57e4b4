"""The whitelist of value transforms a mapping may chain, compiled once per mapping.

No expression language, no ``eval``: a mapping names transforms from this table, each a typed
Python function that raises ``ValueError`` with a reason; the compiler adds record and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.domain.identifiers import clean_siret, siret_problem
from connector.domain.kinds import KindName
from connector.domain.nomenclature import operation_code_known, waste_code_problem
from connector.domain.wastes import normalize_waste_code
from connector.mapping.parsing import (
    DATE_FORMATS,
    format_utc,
    parse_bool,
    parse_datetime,
    parse_decimal,
    parse_int,
    strptime_pattern,
)
from connector.mapping.spec import (
    DateTransform,
    DefaultTransform,
    MapTransform,
    SplitTransform,
    TransformSpec,
)

__all__ = [
    "Transform",
    "apply_chain",
    "compile_transform",
    "is_empty",
    "normalize_operation_code",
]

_COMPACT_KINDS = frozenset({KindName.BSFF, KindName.BSDASRI})
_OPERATION_RE = re.compile(r"^\s*([RD])\s*\.?\s*(\d{1,2})\s*(F?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Transform:
    """One compiled step; ``fn`` gets a non-empty value and raises ValueError with a reason."""

    name: str
    fn: Callable[[Any], Any]
    splits: bool = False
    """After this step the value is a list and later steps apply to each item."""


def normalize_operation_code(value: str, kind: KindName) -> str:
    """``D10`` → ``D 10`` (``D10`` for BSFF/BSDASRI, whose enums use the compact spelling)."""
    match = _OPERATION_RE.match(str(value))
    if not match:
        raise ValueError(f'"{value}" is not a treatment operation code (e.g. "R 1", "D 10")')
    letter, number, final = match.group(1).upper(), str(int(match.group(2))), match.group(3).upper()
    spaced = f"{letter} {number}" + (f" {final}" if final else "")
    if not operation_code_known(spaced):
        raise ValueError(f'"{value}" is not a known treatment operation code')
    return spaced.replace(" ", "") if kind in _COMPACT_KINDS else spaced


def _waste_code(value: Any) -> str:
    """``150110`` → ``15 01 10`` only when that code exists; else the reason names the official code."""
    try:
        code = normalize_waste_code(str(value))
    except ValueError:
        reason = "six digits, optional \"*\", e.g. \"16 01 04*\""
        raise ValueError(f'"{value}" is not a waste code ({reason})') from None
    problem = waste_code_problem(code, as_written=str(value))
    if problem:
        raise ValueError(problem)
    return code


def _siret(value: Any) -> str:
    cleaned = clean_siret(str(value))
    problem = siret_problem(cleaned)
    if problem:
        raise ValueError(f'"{value}" is not a valid SIRET: {problem}')
    return cleaned


def _scale(factor: Decimal, value: Any) -> Decimal:
    return parse_decimal(value) * factor


def _date(patterns: tuple[str, ...], zone: ZoneInfo, value: Any) -> str:
    return format_utc(parse_datetime(value, patterns, zone))


def _split(sep: str, value: Any) -> list[str]:
    return [part.strip() for part in str(value).split(sep) if part.strip()]


def _map(spec: MapTransform, table: dict[str, Any], value: Any) -> Any:
    key = _map_key(value)
    if key in table:
        return table[key]
    if spec.fallback is not None:
        return spec.fallback
    if spec.keep_unknown:
        return value
    known = ", ".join(f'"{k}"' for k in spec.values)
    raise ValueError(f'"{value}" is not in the value map (known: {known})')


def _map_key(value: Any) -> str:
    return str(value).strip().casefold()


def _simple(name: str, kind: KindName) -> Transform:
    table: dict[str, Callable[[Any], Any]] = {
        "decimal": parse_decimal,
        "int": parse_int,
        "kg_to_t": partial(_scale, Decimal("0.001")),
        "t_to_kg": partial(_scale, Decimal(1000)),
        "waste_code": _waste_code,
        "siret": _siret,
        "upper": lambda v: str(v).upper(),
        "lower": lambda v: str(v).lower(),
        "strip": lambda v: str(v).strip(),
        "bool": parse_bool,
        "operation_code": partial(normalize_operation_code, kind=kind),
    }
    if name == "date":
        return compile_transform(DateTransform(name="date"), kind)
    if name == "split":
        return compile_transform(SplitTransform(name="split"), kind)
    return Transform(name, table[name])


def compile_transform(spec: TransformSpec, kind: KindName) -> Transform:
    """Build the step once; raises ValueError for bad options (unknown date token, time zone)."""
    if isinstance(spec, str):
        return _simple(spec, kind)
    if isinstance(spec, DateTransform):
        formats = tuple(spec.formats or DATE_FORMATS)
        patterns = tuple(strptime_pattern(f) for f in formats)
        try:
            zone = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {spec.timezone!r} (e.g. 'Europe/Paris')") from None
        return Transform("date", partial(_date, patterns, zone))
    if isinstance(spec, MapTransform):
        table = {_map_key(k): v for k, v in spec.values.items()}
        return Transform("map", partial(_map, spec, table))
    if isinstance(spec, DefaultTransform):
        # Empty values never reach ``fn``; apply_chain handles ``default`` itself.
        return Transform("default", lambda v: v)
    if isinstance(spec, SplitTransform):
        if not spec.sep:
            raise ValueError("split needs a non-empty 'sep'")
        return Transform("split", partial(_split, spec.sep), splits=True)
    raise TypeError(f"unexpected transform spec {spec!r}")  # pragma: no cover


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def apply_chain(value: Any, chain: Sequence[Transform], defaults: Sequence[Any | None],
                trace: list[tuple[str, Any]] | None = None) -> Any:
    """Run the steps in order; an empty value skips steps until a ``default`` step fills it.

    ``defaults[i]`` is the value of step ``i`` when it is a ``default`` transform, else None.
    With ``trace``, each step's (name, output) is appended (``explain`` shows them).
    """
    split = False
    for step, default in zip(chain, defaults, strict=True):
        if step.name == "default":
            if is_empty(value) or value == []:
                value = default
        elif is_empty(value):
            pass
        elif split:
            value = [step.fn(item) for item in value if not is_empty(item)]
        else:
            value = step.fn(value)
            split = step.splits
        if trace is not None:
            trace.append((step.name, value))
    return value
