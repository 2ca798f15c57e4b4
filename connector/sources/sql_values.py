"""Driver values to plain Python, and back and forth through JSON checkpoints.

Each driver returns its own types (``memoryview`` for PostgreSQL bytea, ``UUID``, MySQL ``bit``
bytes...); the mapping layer only knows plain values. Cursor values must survive a JSON checkpoint
with their type intact so that ``WHERE updated_at > :last`` compares timestamps, not strings.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["cursor_distance", "decode_value", "encode_value", "row_hash", "to_plain"]

_PLAIN = (str, int, float, bool, Decimal, datetime, date, time, timedelta, type(None))


def to_plain(value: Any) -> Any:
    """Convert one driver value to str, int, float, bool, Decimal, date/time, bytes, list or dict."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return str(value)


def encode_value(value: Any) -> Any:
    """A JSON-safe form that :func:`decode_value` turns back into the same type."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if isinstance(value, datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, time):
        return ["t", value.isoformat()]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    raise TypeError(f"cannot keep a {type(value).__name__} in a checkpoint")


def decode_value(data: Any) -> Any:
    if not isinstance(data, list):
        return data
    tag, text = data
    decoders: dict[str, Callable[[str], Any]] = {
        "f": float, "n": Decimal, "dt": datetime.fromisoformat, "d": date.fromisoformat,
        "t": time.fromisoformat, "b": bytes.fromhex,
    }
    return decoders[tag](text)


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def row_hash(values: Mapping[str, Any], children: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Short content hash of a row and its child rows: what "this record changed" means."""
    payload = json.dumps([values, children], sort_keys=True, default=_default, separators=(",", ":"))
    return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()


def cursor_distance(upper: Any, lower: Any) -> str | None:
    """How far ``lower`` is below ``upper``, for a person: ``"12.5 s"`` for dates, ``"3"`` for ids.

    SQLite keeps dates as text: ISO strings are compared as dates. None when it cannot be told.
    """
    if isinstance(upper, str) and isinstance(lower, str):
        try:
            upper, lower = datetime.fromisoformat(upper), datetime.fromisoformat(lower)
        except ValueError:
            return None
    try:
        if isinstance(upper, datetime) and isinstance(lower, datetime):
            return f"{(upper - lower).total_seconds():g} s"
        if isinstance(upper, int | Decimal) and isinstance(lower, int | Decimal):
            return f"{upper - lower}"
        if isinstance(upper, int | float) and isinstance(lower, int | float):
            return f"{upper - lower:g}"
    except TypeError:  # naive and aware datetimes, bool...
        return None
    return None
