"""SIRET and VAT-number rules, as the platform applies them before anything is stored."""

from __future__ import annotations

import re

__all__ = [
    "clean_siret",
    "is_valid_siret",
    "is_valid_vat",
    "luhn_ok",
    "siret_problem",
]

_SIRET_RE = re.compile(r"^[0-9]{14}\Z")  # \Z, not $: "$" also matches before a final newline
_VAT_RE = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}\Z")
# La Poste establishments share one SIREN whose establishments do not pass Luhn: the platform
# checks that the plain digit sum is a multiple of 5 instead (its headquarters pass Luhn).
_LA_POSTE_SIREN = "356000000"
_LA_POSTE_HQ = "35600000000048"
# "Trackdéchets secours", a placeholder SIRET the platform always accepts.
_ALWAYS_VALID = frozenset({"11111111192062"})


def luhn_ok(digits: str) -> bool:
    """Luhn checksum: double every second digit from the right; the sum is a multiple of 10."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def clean_siret(value: str) -> str:
    """Remove the spaces, dots and dashes people type inside a SIRET (``"356 000 000 00048"``)."""
    return re.sub(r"[\s.\-\u00a0]", "", value)


def siret_problem(value: str) -> str | None:
    """Why ``value`` is not a valid SIRET, or None when it is."""
    if not _SIRET_RE.match(value):
        return "a SIRET has exactly 14 digits"
    if value == "0" * 14:
        return "a SIRET cannot be all zeros"
    if value in _ALWAYS_VALID:
        return None
    if value.startswith(_LA_POSTE_SIREN) and value != _LA_POSTE_HQ:
        if sum(ord(c) - 48 for c in value) % 5 == 0:
            return None
        return "invalid La Poste SIRET (digit sum not a multiple of 5)"
    if not luhn_ok(value):
        return "invalid SIRET checksum (Luhn)"
    return None


def is_valid_siret(value: str) -> bool:
    return siret_problem(value) is None


def is_valid_vat(value: str) -> bool:
    """Shape of an intra-community VAT number: country prefix, then 2 to 13 letters or digits.

    Checksums per country are the platform's business; a foreign transporter is identified by
    this number, so the connector only refuses what can never be one.
    """
    return bool(_VAT_RE.match(value))
