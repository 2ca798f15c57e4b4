"""European waste codes (nomenclature des déchets) in the exact spelling the platform expects."""

from __future__ import annotations

import re

__all__ = ["WASTE_CODE_RE", "is_dangerous_code", "normalize_waste_code"]

WASTE_CODE_RE = re.compile(r"^[0-9]{2} [0-9]{2} [0-9]{2}\*?\Z")  # \Z: "$" lets a final newline through
_LOOSE_RE = re.compile(r"^\s*([0-9]{2})[\s.\-]*([0-9]{2})[\s.\-]*([0-9]{2})\s*(\*?)\s*$")


def normalize_waste_code(value: str) -> str:
    """``160104*``, ``16.01.04 *`` or ``16 01 04*`` all become ``16 01 04*``.

    Raises ValueError when the value is not six digits with an optional star.
    """
    match = _LOOSE_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a waste code (six digits, optional '*', e.g. '16 01 04*')")
    a, b, c, star = match.groups()
    return f"{a} {b} {c}{star}"


def is_dangerous_code(code: str) -> bool:
    return code.endswith("*")
