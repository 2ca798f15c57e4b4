"""Offline checks from the nomenclature: real waste and operation codes, e-mails and phones.

Every rejection names the field and the reason; through a mapping it also names the record and the
column (``test_nomenclature_rejections_name_record_field_and_column``).
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.domain.kinds import KINDS, KindName
from connector.errors import RecordError
from connector.mapping import load_mapping
from connector.mapping.checks import check_payload, contact_problem
from connector.sources.base import SourceRecord

from .conftest import REPO
from .test_examples import csv_records


def problems(kind: KindName, payload: dict[str, Any]) -> list[str]:
    return check_payload(KINDS[kind], payload, seal=False)


@pytest.mark.parametrize(("kind", "path", "code"), [
    (KindName.BSDD, "wasteDetails.code", "13 02 05*"),
    (KindName.BSDD, "wasteDetails.code", "20 03 01"),
    (KindName.BSDA, "waste.code", "17 06 05*"),
    (KindName.BSVHU, "wasteCode", "16 01 06"),
    (KindName.BSFF, "waste.code", "14 06 01*"),
    (KindName.BSDASRI, "waste.code", "18 01 03*"),
])
def test_official_codes_pass_on_their_kind(kind: KindName, path: str, code: str) -> None:
    head, _, leaf = path.rpartition(".")
    payload: dict[str, Any] = {leaf: code} if not head else {head: {leaf: code}}
    assert problems(kind, payload) == []


def test_a_dangerous_code_sent_without_its_star_names_the_official_code() -> None:
    assert problems(KindName.BSDD, {"wasteDetails": {"code": "15 01 10"}}) == [
        'field "wasteDetails.code": "15 01 10" is not in the official waste-code list: the official code '
        '"15 01 10*" is dangerous and is written with its star'
    ]


def test_a_star_on_a_non_dangerous_code_names_the_official_code() -> None:
    assert problems(KindName.BSVHU, {"wasteCode": "16 01 06*"}) == [
        'field "wasteCode": "16 01 06*" is not in the official waste-code list: the official code '
        '"16 01 06" is not dangerous and is written without a star'
    ]


def test_an_existing_code_on_the_wrong_kind_lists_the_accepted_ones() -> None:
    assert problems(KindName.BSVHU, {"wasteCode": "15 01 10*"}) == [
        'field "wasteCode": "15 01 10*" is not accepted on a BSVHU (accepted: 16 01 04*, 16 01 06)'
    ]
    # BSDA accepts 26 codes: too many to list, the reason is still exact.
    assert problems(KindName.BSDA, {"waste": {"code": "13 02 05*"}}) == [
        'field "waste.code": "13 02 05*" is not accepted on a BSDA'
    ]


def test_a_code_absent_from_the_nomenclature_is_refused_on_a_bsdd_too() -> None:
    # Before the nomenclature, BSDD and BSDA codes were left to the server.
    assert problems(KindName.BSDD, {"wasteDetails": {"code": "99 99 99"}}) == [
        'field "wasteDetails.code": "99 99 99" is not in the official waste-code list'
    ]


def test_operation_codes_are_checked_per_kind_and_stage() -> None:
    assert problems(KindName.BSDA, {"destination": {"plannedOperationCode": "R 1"}}) == [
        'field "destination.plannedOperationCode": "R 1" is not a planned operation code accepted on a '
        "BSDA (accepted: R 5, R 13, D 5, D 9 F, D 15)"
    ]
    assert problems(KindName.BSDA, {"destination": {"plannedOperationCode": "D 9 F"}}) == []
    assert problems(KindName.BSFF, {"destination": {"plannedOperationCode": "R12"}}) == []
    assert problems(KindName.BSPAOH, {"destination": {"operation": {"code": "R 1"}}}) == []
    assert problems(KindName.BSPAOH, {"destination": {"operation": {"code": "D 9 F"}}}) == [
        'field "destination.operation.code": "D 9 F" is not a done operation code accepted on a BSPAOH '
        "(accepted: R 1, D 10)"
    ]


def test_bsdd_planned_operation_spellings_and_reuse() -> None:
    for code in ("D 10", "D10", "D 9 F", "D9 F", "R 13"):
        assert problems(KindName.BSDD, {"recipient": {"processingOperation": code}}) == [], code
    reuse = {"recipient": {"processingOperation": "R 0"}}
    assert problems(KindName.BSDD, reuse) == [
        'field "recipient.processingOperation": "R 0" is not a planned operation code accepted on a BSDD '
        "(accepted: R 1, R 2, R 3, R 4, R 5, R 6, R 7, R 8, R 9, R 10, R 11, R 12, R 13, D 1, D 2, D 3, "
        "D 4, D 5, D 8, D 9, D 9 F, D 10, D 12, D 13, D 14, D 15)"
    ]
    assert problems(KindName.BSDD, {**reuse, "emitter": {"type": "APPENDIX2"}}) == []


@pytest.mark.parametrize("mail", ["jean.dupont@dechets.org", "a.b+erp@sous.domaine.fr", "x@y.co"])
def test_sane_emails_pass(mail: str) -> None:
    assert contact_problem("mail", mail) is None


@pytest.mark.parametrize("mail", ["jean.dupont", "jean@dechets", "jean @dechets.org", "a@@b.fr",
                                  "jean@dechets.org;marie@dechets.org", "@dechets.org", "jean@.fr"])
def test_broken_emails_are_refused(mail: str) -> None:
    assert contact_problem("mail", mail) == (
        f'"{mail}" is not an e-mail address (one "@", a domain with a dot, no space)'
    )


@pytest.mark.parametrize("phone", ["04 72 00 00 01", "+33 4 72 00 00 01", "04.72.00.00.01", "0472000001",
                                   "+49 (0)30 1234567", "01-00-00-00-00", "(+33) 4 72 00 00 01"])
def test_sane_phones_pass(phone: str) -> None:
    assert contact_problem("phone", phone) is None


@pytest.mark.parametrize("phone", ["n/a", "0472", "04 72 00 00 01 poste 12", "tel: 0472000001",
                                   "++33 472000001",
                                   "+33 4 72 00 00 01 00 00 00 00"])
def test_broken_phones_are_refused(phone: str) -> None:
    assert contact_problem("phone", phone) == (
        f'"{phone}" is not a phone number (6 to 15 digits, optional "+", spaces, ".", "-")'
    )


def test_contacts_are_checked_wherever_they_are_in_the_payload() -> None:
    payload = {"emitter": {"company": {"mail": "jean.dupont", "phone": "04 72 00 00 01"}},
               "intermediaries": [{"mail": "ok@b.fr", "phone": "?"}],
               "destination": {"company": {"mail": ""}}}
    assert problems(KindName.BSDA, payload) == [
        'field "emitter.company.mail": "jean.dupont" is not an e-mail address (one "@", a domain with a dot, '
        "no space)",
        'field "intermediaries[0].phone": "?" is not a phone number (6 to 15 digits, optional "+", spaces, '
        '".", "-")',
    ]


def test_nomenclature_rejections_name_record_field_and_column(schema) -> None:
    mapping = load_mapping(REPO / "mappings" / "bsdd_csv.toml", schema)
    record = csv_records("bsdd_enlevements.csv", "n_bon")[0]
    values = {**record.values, "code_dechet": "150110", "email": "marie.dupont(at)garage.example"}
    with pytest.raises(RecordError) as caught:
        mapping.apply(SourceRecord(key=record.key, origin="export.csv:line 2", values=values))
    assert caught.value.problems == [
        'export.csv:line 2: field "wasteDetails.code" (column "code_dechet"): "150110" is not in the '
        'official waste-code list: the official code "15 01 10*" is dangerous and is written with its star',
    ]
    fixed = {**values, "code_dechet": "150110*"}
    with pytest.raises(RecordError) as caught:
        mapping.apply(SourceRecord(key=record.key, origin="export.csv:line 2", values=fixed))
    assert caught.value.problems == [
        'export.csv:line 2: field "emitter.company.mail" (column "email"): "marie.dupont(at)garage.example" '
        'is not an e-mail address (one "@", a domain with a dot, no space)',
    ]
    assert mapping.apply(SourceRecord(key=record.key, origin="o", values={**fixed, "email": "m@g.fr"}))[
        "wasteDetails"]["code"] == "15 01 10*"
