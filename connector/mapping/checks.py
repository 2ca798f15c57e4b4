"""Local domain checks on a mapped payload, before it costs a request.

The server would refuse these anyway, but one request per mistake is slow and burns the rate
limit; here every problem of the record is found at once, worded for the person fixing the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from connector.domain.identifiers import siret_problem
from connector.domain.kinds import BsdKind, KindName
from connector.domain.nomenclature import Stage, is_dangerous, operation_codes, waste_code_problem
from connector.domain.wastes import WASTE_CODE_RE

__all__ = ["check_payload", "contact_problem"]

_WASTE_CODE_PATH = {
    KindName.BSDD: "wasteDetails.code", KindName.BSDA: "waste.code", KindName.BSDASRI: "waste.code",
    KindName.BSFF: "waste.code", KindName.BSVHU: "wasteCode", KindName.BSPAOH: "waste.code",
}
_OPERATION_PATHS: dict[KindName, tuple[tuple[str, Stage], ...]] = {
    KindName.BSDD: (("recipient.processingOperation", "planned"),
                    ("temporaryStorageDetail.destination.processingOperation", "planned")),
    KindName.BSDA: (("destination.plannedOperationCode", "planned"), ("destination.operation.code", "done")),
    KindName.BSVHU: (("destination.plannedOperationCode", "planned"), ("destination.operation.code", "done")),
    KindName.BSFF: (("destination.plannedOperationCode", "planned"),),
    KindName.BSDASRI: (("destination.operation.code", "done"),),
    KindName.BSPAOH: (("destination.operation.code", "done"),),
}
_WEIGHT_PATHS = {
    KindName.BSDD: ("wasteDetails.quantity",),
    KindName.BSDA: ("weight.value",),
    KindName.BSVHU: ("weight.value",),
    KindName.BSFF: ("weight.value",),
    KindName.BSDASRI: ("emitter.emission.weight.value",),
    KindName.BSPAOH: ("emitter.emission.detail.weight.value",),
}
_ROAD_LIMIT_T = 40
_ABSOLUTE_LIMIT_T = 50_000

_BSDD_SEAL_REQUIRED = (
    "emitter.type", "emitter.company.name", "emitter.company.address",
    "recipient.company.siret", "recipient.company.name", "recipient.company.address",
    "recipient.company.contact", "recipient.company.phone", "recipient.company.mail",
    "wasteDetails.code", "wasteDetails.name", "wasteDetails.quantity", "wasteDetails.quantityType",
    "wasteDetails.isSubjectToADR",
)
_BSDD_EMITTER_CONTACT = ("emitter.company.siret", "emitter.company.contact",
                         "emitter.company.phone", "emitter.company.mail")


@lru_cache(maxsize=512)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _get(payload: Mapping[str, Any], path: str) -> Any:
    # Payloads are plain dicts built by the mapping; ``type(...) is dict`` is several times cheaper
    # than an ABC check, and these run some seventy times per record.
    current: Any = payload
    for part in _parts(path):
        if type(current) is not dict and not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


_CHECKED_LEAVES = frozenset({"siret", "mail", "phone"})


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every ``siret``/``mail``/``phone`` key, depth first in the payload's
    order, without recursion."""
    stack: list[tuple[str, Any, str | None]] = [(path, value, None)]
    while stack:
        where, node, leaf = stack.pop()
        if leaf is not None:
            yield where, leaf, node
        elif type(node) is dict or isinstance(node, Mapping):
            for key, inner in reversed(list(node.items())):
                sub = f"{where}.{key}" if where else key
                if key in _CHECKED_LEAVES and inner is not None:
                    stack.append((sub, inner, key))
                elif type(inner) in (dict, list) or isinstance(inner, Mapping):
                    stack.append((sub, inner, None))
        elif type(node) is list:
            stack.extend((f"{where}[{i}]", item, None) for i, item in reversed(list(enumerate(node))))


_MAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_RE = re.compile(r"^[0-9 .\-/()]*\+?[0-9 .\-/()]+$")


def contact_problem(key: str, value: str) -> str | None:
    """Why an e-mail (``mail``) or a phone number (``phone``) cannot be right, or None.

    Deliberately loose: a sane address has one ``@`` and a dotted domain, no space; a phone number
    has 6 to 15 digits (E.164's longest), one optional ``+`` (``(+33) 4…``) and usual separators only.
    """
    if not value.strip():
        return None
    if key == "mail" and not _MAIL_RE.match(value):
        return f'"{value}" is not an e-mail address (one "@", a domain with a dot, no space)'
    if key == "phone":
        digits = sum(c.isdigit() for c in value)
        if not _PHONE_RE.match(value.strip()) or not 6 <= digits <= 15:
            return f'"{value}" is not a phone number (6 to 15 digits, optional "+", spaces, ".", "-")'
    return None


def check_payload(kind: BsdKind, payload: Mapping[str, Any], *, seal: bool) -> list[str]:
    """Every problem of this payload as ``field "path": reason``; empty when it looks sendable."""
    problems: list[str] = []
    for path, key, value in _leaves(payload):
        if key == "siret":
            reason = siret_problem(str(value))
            if reason:
                problems.append(f'field "{path}": "{value}" is not a valid SIRET: {reason}')
        elif isinstance(value, str):
            reason = contact_problem(key, value)
            if reason:
                problems.append(f'field "{path}": {reason}')
    problems += _check_lengths(kind, payload)
    problems += _check_waste_code(kind, payload)
    problems += _check_operation_codes(kind, payload)
    problems += _check_weights(kind, payload)
    if seal and kind.name is KindName.BSDD:
        problems += _check_bsdd_sealable(payload)
    return problems


# Lengths the platform enforces on a BSDD (its validation rules); other kinds are left to the server.
_BSDD_MAX_LENGTHS: dict[str, int] = {
    **{f"{role}.company.{field}": 250 for role in ("emitter", "recipient", "transporter", "trader", "broker")
       for field in ("name", "address", "contact", "mail")},
    "emitter.company.phone": 20, "recipient.company.phone": 20,
    "emitter.workSite.name": 250, "emitter.workSite.address": 250, "emitter.workSite.city": 100,
    "emitter.workSite.postalCode": 20, "emitter.workSite.infos": 500,
    "wasteDetails.name": 250, "wasteDetails.onuCode": 750, "wasteDetails.nonRoadRegulationMention": 250,
    "recipient.cap": 250, "transporter.customInfo": 250,
}
_ANY_KIND_MAX_LENGTHS = {"customId": 250, "emitter.customInfo": 250}


def _check_lengths(kind: BsdKind, payload: Mapping[str, Any]) -> list[str]:
    limits = {**_ANY_KIND_MAX_LENGTHS, **(_BSDD_MAX_LENGTHS if kind.name is KindName.BSDD else {})}
    problems = []
    for path, limit in limits.items():
        value = _get(payload, path)
        if isinstance(value, str) and len(value) > limit:
            problems.append(f'field "{path}": {len(value)} characters, the platform accepts at most {limit}')
    return problems


def _check_waste_code(kind: BsdKind, payload: Mapping[str, Any]) -> list[str]:
    path = _WASTE_CODE_PATH[kind.name]
    code = _get(payload, path)
    if code is None:
        return []
    if not WASTE_CODE_RE.match(str(code)):
        return [f'field "{path}": "{code}" is not a waste code written "NN NN NN" or "NN NN NN*" '
                f"(add the waste_code transform)"]
    reason = waste_code_problem(str(code), kind.name)
    return [f'field "{path}": {reason}'] if reason else []


def _check_operation_codes(kind: BsdKind, payload: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, stage in _OPERATION_PATHS[kind.name]:
        code = _get(payload, path)
        if not isinstance(code, str) or not code.strip():
            continue
        appendix2 = kind.name is KindName.BSDD and _get(payload, "emitter.type") == "APPENDIX2"
        if code not in _accepted_operations(kind.name, stage, appendix2):
            listed = ", ".join(sorted(operation_codes(kind.name, stage), key=_operation_order))
            problems.append(f'field "{path}": "{code}" is not a {stage} operation code accepted on a '
                            f"{kind.name} (accepted: {listed})")
    return problems


@lru_cache(maxsize=32)
def _accepted_operations(kind: KindName, stage: Stage, appendix2: bool) -> frozenset[str]:
    accepted = operation_codes(kind, stage)
    if kind is KindName.BSDD:
        # A BSDD's planned operation may drop its first space ("D10"); "R 0" only after APPENDIX2.
        accepted = accepted | {c.replace(" ", "", 1) for c in accepted}
        if appendix2:
            accepted = accepted | {"R 0", "R0"}
    return accepted


def _operation_order(code: str) -> tuple[bool, int, str]:
    """``R 1`` < ``R 2`` < ``R 10`` < ``D 9`` < ``D 9 F``: recovery first, then disposal, by number."""
    compact = code.replace(" ", "")
    digits = "".join(c for c in compact[1:] if c.isdigit())
    return (compact[0] != "R", int(digits or 0), compact)


def _check_weights(kind: BsdKind, payload: Mapping[str, Any]) -> list[str]:
    factor = 1000 if kind.weight_unit == "kg" else 1
    by_road = _uses_road(payload)
    limit = (_ROAD_LIMIT_T if by_road else _ABSOLUTE_LIMIT_T) * factor
    problems = []
    for path in _WEIGHT_PATHS[kind.name]:
        value = _get(payload, path)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if value <= 0:
            problems.append(f'field "{path}": {value:g} {kind.weight_unit} must be greater than 0')
        elif value > limit:
            how = "by road" if by_road else "in all"
            problems.append(f'field "{path}": {value:g} {kind.weight_unit} is over the limit of '
                            f"{limit:g} {kind.weight_unit} {how} (is the unit right? kg_to_t / t_to_kg)")
    return problems


def _uses_road(payload: Mapping[str, Any]) -> bool:
    """Road unless a transport mode says otherwise: the platform defaults the mode to ROAD."""
    modes = [_get(payload, "transporter.mode"), _get(payload, "transporter.transport.mode")]
    given = [m for m in modes if m is not None]
    return not given or "ROAD" in given


def _check_bsdd_sealable(payload: Mapping[str, Any]) -> list[str]:
    problems = []
    missing = [p for p in _BSDD_SEAL_REQUIRED if _blank(_get(payload, p))]
    private = _get(payload, "emitter.isPrivateIndividual") or _get(payload, "emitter.isForeignShip")
    if not private:
        missing += [p for p in _BSDD_EMITTER_CONTACT if _blank(_get(payload, p))]
    operation = _get(payload, "recipient.processingOperation")
    if not _get(payload, "recipient.isTempStorage") and _blank(operation):
        missing.append("recipient.processingOperation")
    code = _get(payload, "wasteDetails.code")
    dangerous = (isinstance(code, str) and is_dangerous(code)) or bool(
        _get(payload, "wasteDetails.isDangerous")
    )
    if dangerous and _get(payload, "emitter.type") != "APPENDIX1" and _blank(_get(payload, "recipient.cap")):
        missing.append("recipient.cap")
    if not _get(payload, "wasteDetails.consistences"):
        missing.append("wasteDetails.consistences")
    problems += [f'field "{p}": is required to seal a BSDD (markAsSealed)' for p in missing]
    for path in ("emitter.company.phone", "recipient.company.phone"):
        phone = _get(payload, path)
        if isinstance(phone, str) and len(phone) > 20:
            problems.append(f'field "{path}": "{phone}" is longer than 20 characters')
    adr, onu = _get(payload, "wasteDetails.isSubjectToADR"), _get(payload, "wasteDetails.onuCode")
    if adr is True and _blank(onu):
        problems.append('field "wasteDetails.onuCode": is required when isSubjectToADR is true')
    if adr is False and not _blank(onu):
        problems.append('field "wasteDetails.onuCode": must be empty when isSubjectToADR is false')
    if not _get(payload, "isDirectSupply"):
        problems += _check_packagings(_get(payload, "wasteDetails.packagingInfos"))
    return problems


def _check_packagings(infos: Any) -> list[str]:
    path = "wasteDetails.packagingInfos"
    if not infos:
        return [f'field "{path}": at least one packaging is required to seal a BSDD']
    problems = []
    types = {info.get("type") for info in infos}
    for index, info in enumerate(infos):
        kind, quantity = info.get("type"), info.get("quantity")
        where = f'field "{path}[{index}]'
        if kind == "PIPELINE":
            problems.append(f'{where}.type": PIPELINE is no longer accepted')
        if not isinstance(quantity, int) or quantity < 1:
            problems.append(f'{where}.quantity": needs a whole number of packagings, at least 1')
        elif kind in ("CITERNE", "BENNE") and quantity > 2:
            problems.append(f'{where}.quantity": at most 2 for {kind}')
        if (kind == "AUTRE") != (not _blank(info.get("other"))):
            problems.append(f'{where}.other": required if and only if type is AUTRE')
    if types & {"CITERNE", "BENNE"} and len(types) > 1:
        problems.append(f'field "{path}": CITERNE or BENNE cannot be mixed with other packagings')
    return problems


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []
