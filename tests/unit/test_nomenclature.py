"""The nomenclature loader: lookups over the project's copy of the official lists."""

from __future__ import annotations

from connector.domain.kinds import KindName
from connector.domain.nomenclature import (
    is_dangerous,
    nomenclature,
    operation_code_known,
    operation_codes,
    waste_code_kinds,
    waste_code_known,
)


def test_waste_codes_exist_per_kind() -> None:
    assert waste_code_known("16 01 04*")
    assert waste_code_known("16 01 04*", KindName.BSVHU)
    assert not waste_code_known("16 01 04*", KindName.BSDA)
    assert not waste_code_known("16 01 04")
    assert waste_code_kinds("17 06 05*") == {KindName.BSDA}
    assert waste_code_kinds("00 00 00") == frozenset()
    every_kind = {kind for kinds in nomenclature().waste_codes.values() for kind in kinds}
    assert every_kind == set(KindName)


def test_dangerous_follows_the_list_then_the_star() -> None:
    assert is_dangerous("15 01 10*")
    assert not is_dangerous("15 01 01")
    assert is_dangerous("99 99 99*")  # unknown: judged by its star


def test_operation_codes_per_kind_and_stage() -> None:
    assert operation_codes(KindName.BSPAOH) == {"R 1", "D 10"}
    assert "R 0" in operation_codes(KindName.BSDD, "done")
    assert "R 0" not in operation_codes(KindName.BSDD, "planned")
    assert "D9F" in operation_codes(KindName.BSDASRI)  # compact spelling on BSFF and BSDASRI
    assert not any(code in operation_codes(KindName.BSDD) for code in ("D 6", "D 7", "D 11"))
    assert operation_code_known("D9 F")
    assert not operation_code_known("D 6")


def test_the_lists_are_read_once() -> None:
    assert nomenclature() is nomenclature()
