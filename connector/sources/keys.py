"""Record keys: several key columns joined into one string that can be split back.

The engine only sees one opaque ``key``; write-backs must bind each key column again, so a value
that contains the separator is escaped instead of silently making two keys collide.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["NULL_MARKERS", "join_key", "split_key"]

NULL_MARKERS = frozenset({"", "null", "\\n", "none"})
"""Text values an export uses for "no value" (compared lower-cased, after strip)."""


def join_key(parts: Sequence[object]) -> str:
    """Join key values with ``|``, escaping ``\\`` and ``|`` inside values."""
    texts = [str(p) for p in parts]
    return "|".join(t.replace("\\", "\\\\").replace("|", "\\|") if "\\" in t or "|" in t else t
                    for t in texts)


def split_key(key: str) -> list[str]:
    """Inverse of :func:`join_key`."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(key)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == "|":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
