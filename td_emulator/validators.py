"""The platform's identifier and code checks, written for the emulator alone.

Deliberately independent of the connector's own checks (``connector.domain``): the emulator stands
for the platform, so a mistake shared by the two would pass every test. Each rule below restates
the platform's behaviour (``isSiret``, ``isVat``/``isFRVat``, the waste-code list) in its own code;
``tests/integration/emulator/test_validators_agree.py`` feeds both sides a table of tricky values.
"""

from __future__ import annotations

import re

__all__ = [
    "LA_POSTE_HEADQUARTERS",
    "SIRET_BYPASS",
    "TEST_COMPANY_PREFIX",
    "is_dangerous_waste_code",
    "is_french_vat",
    "is_siret",
    "siret_problem",
    "vat_problem",
    "waste_code_format_ok",
]

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEADQUARTERS = "35600000000048"
"""La Poste's head office: the only establishment of its SIREN that follows the Luhn rule."""
SIRET_BYPASS = "11111111192062"
"""The platform's placeholder establishment ("secours"), always accepted."""
TEST_COMPANY_PREFIX = "000000"
"""Accepted whatever the checksum on a platform started with test companies allowed (the sandbox)."""

_FOURTEEN_DIGITS = re.compile(r"[0-9]{14}")
_NOT_ALNUM = re.compile(r"[\W_]")
# Country prefixes of the VAT numbers the platform knows (its jsvat country list).
_VAT_COUNTRIES = frozenset({
    "AD", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "EL", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "NO", "PL", "PT", "RO", "RS", "SK", "SI", "ES", "SE", "CH",
    "GB", "XI",
})
_WASTE_CODE = re.compile(r"[0-9]{2} [0-9]{2} [0-9]{2}\*?")


def _luhn_sum(digits: str) -> int:
    """The platform's ``luhnCheckSum``: the check digit as is, then every other digit doubled."""
    values = [int(char) for char in digits[::-1]]
    check, rest = values[0], values[1:]
    total = check
    for position, value in enumerate(rest):
        if position % 2 == 0:
            doubled = value * 2
            total += doubled - 9 if doubled > 9 else doubled
        else:
            total += value
    return total


def siret_problem(value: object, *, allow_test_company: bool = False) -> str | None:
    """Why the platform refuses ``value`` as a SIRET, or None when it accepts it."""
    if not isinstance(value, str) or not _FOURTEEN_DIGITS.fullmatch(value):
        return "14 chiffres attendus"
    if value == "0" * 14:
        return "un SIRET ne peut pas être composé uniquement de zéros"
    if allow_test_company and value.startswith(TEST_COMPANY_PREFIX):
        return None
    if value.startswith(LA_POSTE_SIREN) and value != LA_POSTE_HEADQUARTERS:
        digit_sum = sum(int(char) for char in value)
        return None if digit_sum % 5 == 0 else "somme des chiffres d'un établissement La Poste invalide"
    if value == SIRET_BYPASS:
        return None
    return None if _luhn_sum(value) % 10 == 0 else "clé de contrôle (Luhn) invalide"


def is_siret(value: object, *, allow_test_company: bool = False) -> bool:
    return siret_problem(value, allow_test_company=allow_test_company) is None


def is_french_vat(value: str) -> bool:
    """``FR`` + a two-digit key + a SIREN, where key = (12 + 3 × (SIREN mod 97)) mod 97."""
    if len(value) != 13 or not value.upper().startswith("FR") or not value[2:].isdigit():
        return False
    siren = value[4:]
    return (12 + 3 * (int(siren) % 97)) % 97 == int(value[2:4]) and _luhn_sum(siren) % 10 == 0


def vat_problem(value: object) -> str | None:
    """Shape checks of an intra-community VAT number: no punctuation, a known country, 2-13 chars.

    The platform also runs each country's checksum; the emulator keeps to the shape, which is what
    a client can get wrong without looking the company up.
    """
    if not isinstance(value, str) or not value or _NOT_ALNUM.search(value):
        return "sans espace ni ponctuation"
    country, number = value[:2], value[2:]
    if country not in _VAT_COUNTRIES:
        return f"pays inconnu \"{country}\""
    if not 2 <= len(number) <= 13 or not number.isalnum() or number.upper() != number:
        return "format invalide"
    return None


def waste_code_format_ok(code: object) -> bool:
    """Three pairs of digits separated by single spaces, an optional ``*`` right after."""
    return isinstance(code, str) and _WASTE_CODE.fullmatch(code) is not None


def is_dangerous_waste_code(code: str) -> bool:
    return code[-1:] == "*"
