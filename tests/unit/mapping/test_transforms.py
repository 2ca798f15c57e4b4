"""Each transform on the values French business systems actually write."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from connector.domain.kinds import KindName
from connector.mapping.spec import DateTransform, DefaultTransform, MapTransform, SplitTransform
from connector.mapping.transforms import apply_chain, compile_transform


def run(value, *specs, kind=KindName.BSDD):
    chain = tuple(compile_transform(s, kind) for s in specs)
    defaults = tuple(s.value if isinstance(s, DefaultTransform) else None for s in specs)
    return apply_chain(value, chain, defaults)


@pytest.mark.parametrize(("raw", "expected"), [
    ("12/03/2026", "2026-03-11T23:00:00Z"),            # midnight in Paris (UTC+1 in winter)
    ("12/07/2026 14:30", "2026-07-12T12:30:00Z"),      # summer time: UTC+2
    ("2026-03-12", "2026-03-11T23:00:00Z"),
    ("2026-03-12T10:00:00+00:00", "2026-03-12T10:00:00Z"),
    ("2026-03-12T10:00:00.250Z", "2026-03-12T10:00:00.250Z"),
    (datetime(2026, 1, 5, 9, 0), "2026-01-05T08:00:00Z"),
    (date(2026, 1, 5), "2026-01-04T23:00:00Z"),
])
def test_date_reads_naive_times_in_paris_and_writes_utc(raw, expected):
    assert run(raw, "date") == expected


def test_date_with_explicit_format_refuses_others():
    spec = DateTransform(name="date", formats=["dd/mm/yyyy"])
    assert run("01/02/2026", spec) == "2026-01-31T23:00:00Z"
    with pytest.raises(ValueError, match='"2026-02-01" is not a date \\(expected dd/mm/yyyy\\)'):
        run("2026-02-01", spec)


def test_date_format_with_unknown_token_is_refused_at_compile_time():
    with pytest.raises(ValueError, match="unknown token"):
        compile_transform(DateTransform(name="date", formats=["jj/mm/aaaa"]), KindName.BSDD)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1 250,5", Decimal("1250.5")), ("1\u00a0250,5", Decimal("1250.5")), ("12.5", Decimal("12.5")),
    ("-3", Decimal(-3)), (7, Decimal(7)), (",5", Decimal("0.5")),
])
def test_decimal_accepts_comma_and_spaces(raw, expected):
    assert run(raw, "decimal") == expected


@pytest.mark.parametrize("raw", ["12,x", "1,2,3", "abc", "1e5"])
def test_decimal_refuses_garbage(raw):
    with pytest.raises(ValueError, match="is not a number"):
        run(raw, "decimal")


def test_int_refuses_fractions():
    assert run("3,0", "int") == 3
    with pytest.raises(ValueError, match='"3,5" is not a whole number'):
        run("3,5", "int")


def test_units():
    assert run("1234", "kg_to_t") == Decimal("1.234")
    assert run("1,5", "t_to_kg") == Decimal(1500)


def test_waste_code_and_siret():
    assert run("160104*", "waste_code") == "16 01 04*"
    assert run("852 431 620 00123", "siret") == "85243162000123"
    with pytest.raises(ValueError, match="invalid SIRET checksum"):
        run("85243162000124", "siret")
    with pytest.raises(ValueError, match='"16010" is not a waste code'):
        run("16010", "waste_code")


@pytest.mark.parametrize(("raw", "expected"), [
    ("150110*", "15 01 10*"), ("16.01.06", "16 01 06"), (" 17 06 05 * ", "17 06 05*"), (200301, "20 03 01"),
])
def test_waste_code_normalises_to_an_official_code(raw, expected):
    assert run(raw, "waste_code") == expected


def test_waste_code_does_not_normalise_into_a_code_that_does_not_exist():
    with pytest.raises(ValueError, match=r'^"150110" is not in the official waste-code list: the official '
                                         r'code "15 01 10\*" is dangerous and is written with its star$'):
        run("150110", "waste_code")
    with pytest.raises(ValueError, match=r'^"999999" is not in the official waste-code list$'):
        run("999999", "waste_code")


def test_text_transforms_chain_in_order():
    assert run("  dupont ", "strip", "upper") == "DUPONT"
    assert run("ABC", "lower") == "abc"


def test_default_fills_empty_and_later_steps_run():
    assert run("", DefaultTransform(name="default", value="oui"), "bool") is True
    assert run("non", DefaultTransform(name="default", value="oui"), "bool") is False


def test_map_with_fallback_and_case_insensitive_keys():
    spec = MapTransform(name="map", values={"Réelle": "REAL"}, fallback="ESTIMATED")
    assert run(" réelle ", spec) == "REAL"
    assert run("autre", spec) == "ESTIMATED"
    strict = MapTransform(name="map", values={"a": "A"})
    with pytest.raises(ValueError, match='"b" is not in the value map \\(known: "a"\\)'):
        run("b", strict)


@pytest.mark.parametrize(("raw", "expected"), [
    ("oui", True), ("NON", False), ("1", True), ("0", False), ("x", True), ("true", True),
    ("faux", False), (1, True),
])
def test_bool(raw, expected):
    assert run(raw, "bool") is expected


def test_bool_refuses_unknown_words():
    with pytest.raises(ValueError, match="is not a yes/no value"):
        run("peut-être", "bool")


def test_split_applies_later_steps_to_each_item():
    assert run("ab-123-cd, EF-456-GH,,", SplitTransform(name="split", sep=","), "upper") == [
        "AB-123-CD", "EF-456-GH"]


@pytest.mark.parametrize(("raw", "kind", "expected"), [
    ("D10", KindName.BSDD, "D 10"), ("d 9 f", KindName.BSDA, "D 9 F"), ("R13", KindName.BSVHU, "R 13"),
    ("R 1", KindName.BSFF, "R1"), ("D 9 F", KindName.BSDASRI, "D9F"), ("R.12", KindName.BSDD, "R 12"),
])
def test_operation_code_spelling_per_kind(raw, kind, expected):
    assert run(raw, "operation_code", kind=kind) == expected


@pytest.mark.parametrize("raw", ["D6", "R 14", "X1", "D 11"])
def test_operation_code_refuses_unknown_codes(raw):
    with pytest.raises(ValueError, match="treatment operation code"):
        run(raw, "operation_code")
