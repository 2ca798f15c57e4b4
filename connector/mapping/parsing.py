"""Parsers for the values French business systems write: decimal commas, dd/mm/yyyy, "oui"/"x".

Each raises ``ValueError`` with a reason a person can act on; the caller adds the record, field
and column.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "DATE_FORMATS",
    "format_utc",
    "parse_bool",
    "parse_datetime",
    "parse_decimal",
    "parse_int",
    "strptime_pattern",
]

_SPACES = re.compile(r"[\s\u00a0\u202f']")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")

DATE_FORMATS: tuple[str, ...] = (
    "dd/mm/yyyy HH:MM:SS", "dd/mm/yyyy HH:MM", "dd/mm/yyyy", "dd-mm-yyyy", "dd.mm.yyyy",
    "yyyy-mm-dd", "iso",
)
"""Spellings the ``date`` transform accepts when the mapping names none."""

_TOKENS = (("yyyy", "%Y"), ("dd", "%d"), ("mm", "%m"), ("HH", "%H"), ("MM", "%M"), ("SS", "%S"))


def strptime_pattern(fmt: str) -> str:
    """``dd/mm/yyyy HH:MM`` → ``%d/%m/%Y %H:%M``; raises ValueError for an unknown token."""
    if fmt == "iso":
        return fmt
    out = fmt.replace("%", "%%")
    for token, directive in _TOKENS:
        out = out.replace(token, directive)
    leftover = re.sub(r"%.", "", out)
    if re.search(r"[A-Za-z]", leftover):
        raise ValueError(
            f"date format {fmt!r} has an unknown token (use dd, mm, yyyy, HH, MM, SS or 'iso')"
        )
    return out


def parse_decimal(value: Any) -> Decimal:
    """``"1 234,5"``, ``"1234.5"``, ``12`` → Decimal; thousands spaces (also NBSP) are ignored."""
    if isinstance(value, bool):
        raise ValueError(f'"{value}" is not a number')
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = _SPACES.sub("", str(value))
    if not _NUMBER.match(text):
        raise ValueError(f'"{value}" is not a number')
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the regex already refused it
        raise ValueError(f'"{value}" is not a number') from None


def parse_int(value: Any) -> int:
    """Whole numbers only: ``"3"`` and ``"3,0"`` pass, ``"3,5"`` is refused rather than rounded."""
    number = parse_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f'"{value}" is not a whole number')
    return int(number)


_TRUE = frozenset({"oui", "o", "1", "true", "vrai", "x", "yes", "y"})
_FALSE = frozenset({"non", "n", "0", "false", "faux", "no"})


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'"{value}" is not a yes/no value (oui/non, 1/0, true/false, x)')


def parse_datetime(value: Any, patterns: tuple[str, ...], zone: tzinfo) -> datetime:
    """An aware datetime; a naive input is read in ``zone`` (the platform does the same)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        parsed = _parse_text(str(value).strip(), patterns)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def _parse_text(text: str, patterns: tuple[str, ...]) -> datetime:
    for pattern in patterns:
        try:
            if pattern == "iso":
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(f'"{text}" is not a date (expected {_describe(patterns)})')


def _describe(patterns: tuple[str, ...]) -> str:
    readable = []
    for pattern in patterns:
        out = pattern
        for token, directive in _TOKENS:
            out = out.replace(directive, token)
        readable.append("ISO 8601" if out == "iso" else out)
    return " or ".join(readable)


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``: never ambiguous, whatever the server's own time zone."""
    utc = moment.astimezone(UTC)
    text = utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")
