"""The connector's checks and the emulator's own agree on what the platform accepts.

The two are written separately on purpose (``connector/domain`` and ``td_emulator/validators.py``):
each row below states the platform's verdict (``isSiret``, ``isVat``, the waste-code list of
``libs/shared/constants`` in MTES-MCT/trackdechets), and both sides must give it. A row where one
side drifts is a test failure, not a shared blind spot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.domain.identifiers import is_valid_vat, siret_problem
from connector.domain.kinds import KindName
from connector.domain.nomenclature import waste_code_known
from connector.domain.wastes import WASTE_CODE_RE, is_dangerous_code
from td_emulator import validators
from td_emulator.rules_common import PACKAGED_WASTE_CODES, WasteCatalog

# (value, does the production platform accept it as a SIRET, why the row is here)
SIRETS = [
    ("85243162000123", True, "Luhn"),
    ("85243162000124", False, "last digit off by one"),
    ("73282932000074", True, "a real establishment"),
    ("35600000000048", True, "La Poste headquarters: Luhn"),
    ("35600000000001", True, "La Poste establishment: digit sum 15, fails Luhn"),
    ("35600000000014", False, "La Poste establishment passing Luhn, digit sum 19"),
    ("35600000000049", False, "La Poste headquarters one digit off"),
    ("11111111192062", True, "the platform's always-accepted placeholder"),
    ("00000000000000", False, "all zeros pass Luhn but are refused"),
    ("00000012345678", False, "test-company prefix, only allowed on the sandbox"),
    ("8524316200012", False, "13 digits"),
    ("852431620001230", False, "15 digits"),
    ("852 431 620 00123", False, "spaces are not cleaned by the platform"),
    ("85243162000123\n", False, "a final newline ('$' lets it through a Python regex)"),
    ("08899579032892\n", False, "a final newline that makes the digits pass a naive Luhn"),
    (" 85243162000123", False, "a leading space"),
    ("８５２４３１６２０００１２３", False, "full-width digits, which int() accepts"),
    ("8524316200012A", False, "a letter"),
    ("", False, "empty"),
]

# (value, does the platform accept its format, is it dangerous)
WASTE_CODES = [
    ("16 01 04*", True, True),
    ("16 01 06", True, False),
    ("06 05 02*", True, True),
    ("160104*", False, True),
    ("16 01 04 *", False, True),
    ("16  01 04", False, False),
    ("16 01 04*\n", False, True),
    ("16 01 04**", False, True),
    ("16-01-04", False, False),
    ("", False, False),
]

# (value, accepted as a foreign VAT number's shape by both)
VATS = [
    ("BE0123456789", True),
    ("DE123456789", True),
    ("be0123456789", False),
    ("BE 0123456789", False),
    ("BE0123456789\n", False),
    ("BE-0123456789", False),
    ("B", False),
]


@pytest.mark.parametrize(("value", "accepted", "why"), SIRETS, ids=[row[2] for row in SIRETS])
def test_siret_verdicts(value: str, accepted: bool, why: str) -> None:
    assert (siret_problem(value) is None) is accepted, f"connector disagrees with the platform: {why}"
    assert validators.is_siret(value) is accepted, f"emulator disagrees with the platform: {why}"


def test_the_sandbox_accepts_test_companies_the_production_refuses() -> None:
    assert validators.is_siret("00000012345678", allow_test_company=True)
    assert not validators.is_siret("00000000000000", allow_test_company=True)


@pytest.mark.parametrize(("code", "well_formed", "dangerous"), WASTE_CODES)
def test_waste_code_format_and_danger(code: str, well_formed: bool, dangerous: bool) -> None:
    assert (WASTE_CODE_RE.match(code) is not None) is well_formed, "connector"
    assert validators.waste_code_format_ok(code) is well_formed, "emulator"
    if well_formed:
        assert is_dangerous_code(code) is dangerous
        assert validators.is_dangerous_waste_code(code) is dangerous


@pytest.mark.parametrize(("value", "accepted"), VATS)
def test_vat_shape(value: str, accepted: bool) -> None:
    assert is_valid_vat(value) is accepted, "connector"
    assert (validators.vat_problem(value) is None) is accepted, "emulator"


def test_a_french_vat_number_is_recognised_by_its_key() -> None:
    # SIREN 732829320: key (12 + 3 × (732829320 mod 97)) mod 97 = 44.
    assert validators.is_french_vat("FR44732829320")
    assert not validators.is_french_vat("FR45732829320")


def _catalog() -> WasteCatalog:
    if not PACKAGED_WASTE_CODES.is_file():
        pytest.fail("td_emulator/data/waste_codes.json is missing: run scripts/refresh_reference_data.py")
    return WasteCatalog.packaged()


@pytest.mark.parametrize("kind", [k.value for k in KindName])
def test_the_connector_and_the_emulator_accept_the_same_codes_per_kind(kind: str) -> None:
    catalog = _catalog()
    codes = set(catalog.accepted_on)
    assert len(codes) > 800
    emulator_side = {code for code in codes if catalog.problem(code, kind) is None}
    connector_side = {code for code in codes if waste_code_known(code, KindName(kind))}
    assert emulator_side == connector_side


def test_the_catalog_loader_tolerates_layouts_and_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    path.write_text(json.dumps({"codes": [{"code": "16 01 04*", "accepted_on": ["BSVHU"], "extra": 1},
                                          {"code": "16 01 06"}, {"no_code": True}, "20 01 01", 42]}))
    catalog = WasteCatalog.from_file(path)
    assert catalog.problem("16 01 04*", "BSVHU") is None
    assert catalog.problem("16 01 04*", "BSDD") is not None
    assert catalog.problem("16 01 06", "BSDD") is None  # no kinds listed: accepted everywhere
    assert catalog.problem("20 01 01", "BSDA") is None
    assert catalog.problem("99 99 99", "BSDD") is not None
    path.write_text(json.dumps(["16 01 04*"]))
    assert WasteCatalog.from_file(path).problem("16 01 04*", "BSDD") is None
    path.write_text(json.dumps({"codes": [{"label": "no code here"}]}))
    with pytest.raises(ValueError, match="no waste code"):
        WasteCatalog.from_file(path)
