"""Lifecycle of BSDA, BSVHU, BSDASRI, BSFF and BSPAOH: draft, publish, typed signatures.

The five share one shape (readable id as ``id``, ``isDraft``, ``signX(type)``); the differences
live in ``rules_other.KIND_SPECS`` and in the small tables below.
"""

from __future__ import annotations

import copy
from typing import Any

from .gql_errors import forbidden, zod_error
from .instance import Emulator, org_ids_on
from .rules_common import Problems, get_path, is_blank
from .rules_other import KIND_SPECS, KindSpec, check_draft, check_publishable
from .seed import User
from .store import now_iso, readable_id

__all__ = ["create", "delete", "duplicate", "publish", "sign", "update"]

_SIGNER_PATH = {"EMISSION": "emitter.company", "WORK": "worker.company", "TRANSPORT": "transporter.company",
                "DELIVERY": "destination.company", "RECEPTION": "destination.company",
                "ACCEPTATION": "destination.company", "OPERATION": "destination.company"}
_SIGNATURE_PATH = {"EMISSION": "emitter.emission.signature", "WORK": "worker.work.signature",
                   "TRANSPORT": "transporter.transport.signature",
                   "DELIVERY": "destination.handedOverToDestination.signature",
                   "RECEPTION": "destination.reception.signature",
                   "ACCEPTATION": "destination.reception.acceptation.signature",
                   "OPERATION": "destination.operation.signature"}
_ACCEPTATION_PATH = {"BSDA": "destination.reception.acceptationStatus",
                     "BSVHU": "destination.reception.acceptationStatus",
                     "BSDASRI": "destination.reception.acceptation.status",
                     "BSPAOH": "destination.reception.acceptation.status",
                     "BSFF": "destination.reception.acceptation.status"}
_DEFAULTS: dict[str, dict[str, Any]] = {"BSDASRI": {"type": "SIMPLE"},
                                         "BSFF": {"type": "COLLECTE_PETITES_QUANTITES", "packagings": []}}
_INPUT_ONLY = ("transporters", "grouping", "forwarding", "repackaging", "synthesizing", "ficheInterventions")


def _raise(problems: Problems) -> None:
    if problems:
        raise zod_error(problems.as_issues())


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if key in _INPUT_ONLY:
            continue
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _normalize(bsd: dict[str, Any]) -> None:
    transporter = bsd.get("transporter")
    bsd["transporters"] = [transporter] if transporter else []


def create(emu: Emulator, kind: str, user: User, data: dict[str, Any], *, draft: bool) -> dict[str, Any]:
    spec = KIND_SPECS[kind]
    now = now_iso()
    bsd: dict[str, Any] = {"id": readable_id(spec.prefix), "createdAt": now, "updatedAt": now,
                           "isDraft": draft, "status": spec.draft_status if draft else "INITIAL",
                           **copy.deepcopy(_DEFAULTS.get(kind, {}))}
    _merge(bsd, data)
    _normalize(bsd)
    emu.check_creator(user, bsd)
    bsd["_draftOwners"] = sorted(set(user.roles) & org_ids_on(bsd))  # the creator's companies on it
    check = check_draft if draft else check_publishable
    _raise(check(spec, bsd, emu.registry, emu.catalog))
    return emu.created(kind, bsd)


def update(emu: Emulator, kind: str, user: User, bsd: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    spec = KIND_SPECS[kind]
    if bsd["status"] not in ("INITIAL", "DRAFT"):
        locked = sorted(k for k in data if k in ("emitter", "waste", "wasteCode", "weight", "type"))
        if locked:
            raise forbidden("Des champs ont été verrouillés via signature et ne peuvent plus être "
                            "modifiés : " + ", ".join(locked))
    updated = copy.deepcopy(bsd)
    _merge(updated, data)
    _normalize(updated)
    emu.check_creator(user, updated)
    check = check_draft if updated["isDraft"] else check_publishable
    _raise(check(spec, updated, emu.registry, emu.catalog))
    with emu.store.lock:
        bsd.clear()
        bsd.update(updated)
        return emu.touch(bsd)


def publish(emu: Emulator, kind: str, bsd: dict[str, Any]) -> dict[str, Any]:
    spec = KIND_SPECS[kind]
    if not bsd["isDraft"]:
        raise emu.invalid_transition()
    _raise(check_publishable(spec, bsd, emu.registry, emu.catalog))
    with emu.store.lock:
        bsd["isDraft"] = False
        bsd["status"] = "INITIAL"
        return emu.touch(bsd)


def _operation_from(kind: str) -> tuple[str, ...]:
    if kind == "BSFF":
        return ("ACCEPTED", "PARTIALLY_REFUSED")
    if kind in ("BSDA", "BSVHU"):
        return ("SENT", "RECEIVED")  # reception is optional for these two
    return ("RECEIVED", "PARTIALLY_REFUSED")


def _next_status(spec: KindSpec, bsd: dict[str, Any], signature: str) -> str | None:
    status, kind = bsd["status"], spec.kind
    if bsd["isDraft"]:
        return None
    has_worker = kind == "BSDA" and bsd.get("type", "OTHER_COLLECTIONS") == "OTHER_COLLECTIONS" and \
        get_path(bsd, "worker.isDisabled") is not True
    refused = get_path(bsd, _ACCEPTATION_PATH[kind])
    table: dict[str, tuple[tuple[str, ...], str]] = {
        "EMISSION": (("INITIAL",), spec.emitted_status),
        "WORK": (("SIGNED_BY_PRODUCER",), "SIGNED_BY_WORKER"),
        "TRANSPORT": ((("SIGNED_BY_WORKER",) if has_worker else (spec.emitted_status,)), "SENT"),
        "DELIVERY": (("SENT",), "SENT"),
        "RECEPTION": (("SENT",), refused if refused in ("REFUSED", "PARTIALLY_REFUSED") and kind != "BSFF"
                      else "RECEIVED"),
        "ACCEPTATION": (("RECEIVED",), "REFUSED" if refused == "REFUSED" else "ACCEPTED"),
        "OPERATION": (_operation_from(kind), "PROCESSED"),
    }
    if kind == "BSPAOH" and signature == "RECEPTION" and refused == "REFUSED":
        table["RECEPTION"] = (("SENT",), "REFUSED")
    if kind in ("BSDA", "BSVHU") and signature == "OPERATION" and status == "SENT" and refused == "REFUSED":
        return None
    expected, target = table.get(signature, ((), ""))
    return target if status in expected else None


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[parts[-1]] = value


def sign(emu: Emulator, kind: str, bsd: dict[str, Any], data: dict[str, Any], user: User | None,
         changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """``signX(id, {type, author, date, securityCode})``; ``changes`` lets the admin API fill data first."""
    spec = KIND_SPECS[kind]
    signature = data["type"]
    candidate = copy.deepcopy(bsd)
    if changes:
        _merge(candidate, changes)
    new_status = _next_status(spec, candidate, signature)
    if new_status is None:
        raise emu.invalid_transition()
    if user is not None:
        company = get_path(candidate, _SIGNER_PATH[signature]) or {}
        org_id = company.get("siret") or company.get("vatNumber")
        registered = emu.registry.companies.get(org_id or "")
        code = data.get("securityCode")
        by_code = code is not None and registered is not None and registered.security_code == code
        if org_id not in user.roles and not by_code:
            raise forbidden("Vous ne pouvez pas signer ce bordereau pour cet acteur")
    problems = Problems(emu.registry)
    if signature == "TRANSPORT" and is_blank(get_path(candidate, "transporter.company.siret")) and \
            is_blank(get_path(candidate, "transporter.company.vatNumber")):
        problems.add("transporter.company.siret", "Le transporteur est obligatoire pour signer l'enlèvement")
    _raise(problems)
    stamp = {"author": data["author"], "date": data.get("date") or now_iso()}
    _set_path(candidate, _SIGNATURE_PATH[signature], stamp)
    candidate["status"] = new_status
    _normalize(candidate)
    with emu.store.lock:
        bsd.clear()
        bsd.update(candidate)
        return emu.touch(bsd)


def delete(emu: Emulator, bsd: dict[str, Any], user: User) -> dict[str, Any]:
    spec = KIND_SPECS[bsd["_kind"]]
    if bsd["status"] == spec.emitted_status and get_path(bsd, "emitter.company.siret") not in user.roles:
        raise forbidden("Seul l'émetteur peut supprimer ce bordereau une fois signé")
    if bsd["status"] not in ("INITIAL", "DRAFT", spec.emitted_status):
        raise forbidden("Seuls les bordereaux non signés peuvent être supprimés")
    with emu.store.lock:
        bsd["_deleted"] = True
        return emu.touch(bsd, "DELETED")


def duplicate(emu: Emulator, kind: str, bsd: dict[str, Any], user: User) -> dict[str, Any]:
    keep = {k: v for k, v in bsd.items() if not k.startswith("_") and k not in
            ("id", "createdAt", "updatedAt", "isDraft", "status", "customId", "isDuplicateOf")}
    copy_ = create(emu, kind, user, keep, draft=True)
    copy_["isDuplicateOf"] = bsd["id"]
    emu.store.save(copy_)
    return copy_
