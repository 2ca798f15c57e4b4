"""BSDD ("Form") lifecycle: create, update, seal, the four signatures, delete, duplicate.

Each step is a plain function ``step(emulator, form, data, user)`` so the GraphQL resolvers and the
admin API (acting as the transporter or the destination, ``user=None``) run the very same rules.
"""

from __future__ import annotations

import copy
from typing import Any

from graphql import GraphQLError

from .gql_errors import SEAL_HEADER, bad_user_input, forbidden
from .instance import Emulator, org_ids_on
from .rules_bsdd import check_draft, check_sealable
from .rules_common import NON_FINAL_CODES, Problems, get_path, is_blank, normalize_operation
from .seed import User
from .store import new_cuid, now_iso, readable_id

__all__ = [
    "create_form", "delete_form", "duplicate_form", "mark_as_accepted", "mark_as_processed",
    "mark_as_received", "mark_as_sealed", "sign_emission", "sign_transport", "update_form",
]

_BASE_FIELDS = ("emitter", "recipient", "transporter", "wasteDetails", "trader", "broker", "ecoOrganisme",
                "intermediaries", "isDirectSupply")
_LOCKED_AFTER_EMISSION = frozenset({"emitter", "recipient", "wasteDetails", "trader", "broker",
                                    "ecoOrganisme", "customId", "isDirectSupply"})


def _raise(problems: Problems, header: str = "") -> None:
    if problems:
        raise bad_user_input(header + "\n".join(message for _, message in problems.items),
                             invalidArgs=[path for path, _ in problems.items])


def _deep_merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _apply_input(form: dict[str, Any], data: dict[str, Any]) -> None:
    changes = {k: v for k, v in data.items() if k not in ("id", "transporters", "appendix2Forms", "grouping")}
    _deep_merge(form, changes)
    code = get_path(form, "wasteDetails.code")
    if isinstance(code, str) and code.endswith("*") and form.get("wasteDetails") is not None:
        form["wasteDetails"].setdefault("isDangerous", True)
    transporter = form.get("transporter")
    form["transporters"] = [transporter] if transporter else []
    form["intermediaries"] = form.get("intermediaries") or []
    form["isDirectSupply"] = bool(form.get("isDirectSupply"))


def create_form(emu: Emulator, user: User, data: dict[str, Any]) -> dict[str, Any]:
    now = now_iso()
    form: dict[str, Any] = {"id": new_cuid(), "readableId": readable_id("BSD"), "status": "DRAFT",
                            "createdAt": now, "updatedAt": now, "isImportedFromPaper": False}
    _apply_input(form, data)
    emu.check_creator(user, form)
    # Like the platform's canAccessDraftSirets: the creator's companies that are on the form.
    form["_draftOwners"] = sorted(set(user.roles) & org_ids_on(form))
    _raise(check_draft(form, emu.registry, emu.catalog))
    with emu.store.lock:
        emu.created("BSDD", form)
        emu.status_log(form, user, {})
    return form


def update_form(emu: Emulator, user: User, form: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    status = form["status"]
    if status not in ("DRAFT", "SEALED"):
        locked = sorted(k for k in data if k in _LOCKED_AFTER_EMISSION)
        if locked:
            raise forbidden("Des champs ont été verrouillés via signature et ne peuvent plus être modifiés : "
                            + ", ".join(locked))
    updated = copy.deepcopy(form)
    _apply_input(updated, data)
    emu.check_creator(user, updated)
    if status == "DRAFT":
        _raise(check_draft(updated, emu.registry, emu.catalog))
    else:
        _raise(check_sealable(updated, emu.registry, emu.catalog), SEAL_HEADER)
    with emu.store.lock:
        form.clear()
        form.update(updated)
        emu.touch(form)
    return form


def _transition(emu: Emulator, form: dict[str, Any], expected: tuple[str, ...], new_status: str,
                user: User | None, fields: dict[str, Any]) -> dict[str, Any]:
    if form["status"] not in expected:
        raise emu.invalid_transition()
    with emu.store.lock:
        form.update(fields)
        form["status"] = new_status
        emu.touch(form)
        emu.status_log(form, user, {k: v for k, v in fields.items() if not k.startswith("_")})
    return form


def _check_actor(user: User | None, form: dict[str, Any], path: str, security_code: int | None,
                 emu: Emulator, role: str) -> None:
    """The actor must belong to the company at ``path``, or give that company's security code."""
    if user is None:
        return
    company = get_path(form, path) or {}
    org_id = company.get("siret") or company.get("vatNumber")
    if org_id in user.roles:
        return
    registered = emu.registry.companies.get(org_id or "")
    if security_code is not None and registered is not None and registered.security_code == security_code:
        return
    if security_code is not None:
        raise forbidden("Le code de signature est invalide.")
    raise forbidden(f"Vous n'êtes pas autorisé à signer ce bordereau en tant que {role}")


def mark_as_sealed(emu: Emulator, form: dict[str, Any], user: User | None) -> dict[str, Any]:
    if form["status"] != "DRAFT":
        raise emu.invalid_transition()
    _raise(check_sealable(form, emu.registry, emu.catalog), SEAL_HEADER)
    return _transition(emu, form, ("DRAFT",), "SEALED", user, {})


def sign_emission(emu: Emulator, form: dict[str, Any], data: dict[str, Any], user: User | None,
                  security_code: int | None = None) -> dict[str, Any]:
    if form["status"] != "SEALED":
        raise emu.invalid_transition()
    _check_actor(user, form, "emitter.company", security_code, emu, "émetteur")
    problems = Problems(emu.registry)
    if data.get("quantity") is not None and data["quantity"] <= 0:
        problems.add("quantity", "La quantité doit être supérieure à 0")
    _raise(problems)
    waste = dict(form.get("wasteDetails") or {})
    waste["quantity"] = data.get("quantity", waste.get("quantity"))
    for key in ("packagingInfos", "onuCode", "nonRoadRegulationMention"):
        if data.get(key) is not None:
            waste[key] = data[key]
    fields: dict[str, Any] = {"wasteDetails": waste, "emittedAt": data.get("emittedAt"),
                              "emittedBy": data.get("emittedBy"),
                              "emittedByEcoOrganisme": bool(data.get("emittedByEcoOrganisme"))}
    if data.get("transporterNumberPlate") and form.get("transporter"):
        fields["transporter"] = {**form["transporter"], "numberPlate": data["transporterNumberPlate"]}
        fields["transporters"] = [fields["transporter"]]
    new_status = "SENT" if form.get("isDirectSupply") else "SIGNED_BY_PRODUCER"
    return _transition(emu, form, ("SEALED",), new_status, user, fields)


def sign_transport(emu: Emulator, form: dict[str, Any], data: dict[str, Any], user: User | None,
                   security_code: int | None = None) -> dict[str, Any]:
    if form["status"] != "SIGNED_BY_PRODUCER":
        raise emu.invalid_transition()
    _check_actor(user, form, "transporter.company", security_code, emu, "transporteur")
    transporter = dict(form.get("transporter") or {})
    company = dict(transporter.get("company") or {})
    for source, target in (("transporterCompanyContact", "contact"), ("transporterCompanyMail", "mail"),
                           ("transporterCompanyPhone", "phone")):
        if data.get(source):
            company[target] = data[source]
    transporter["company"] = company
    transporter["mode"] = data.get("transporterTransportMode") or transporter.get("mode") or "ROAD"
    if data.get("transporterNumberPlate"):
        transporter["numberPlate"] = data["transporterNumberPlate"]
    problems = Problems(emu.registry)
    candidate = {"transporter": transporter}
    if is_blank(company.get("siret")) and is_blank(company.get("vatNumber")):
        problems.add("transporter.company.siret",
                     "Transporteur : le SIRET ou le numéro de TVA est obligatoire")
    for name in ("name", "address", "contact", "phone", "mail"):
        problems.require(candidate, f"transporter.company.{name}", f"Transporteur : {name}")
    if transporter["mode"] == "ROAD":
        problems.require(candidate, "transporter.numberPlate", "L'immatriculation (transport routier)")
    _raise(problems)
    fields = {"transporter": transporter, "transporters": [transporter],
              "takenOverAt": data.get("takenOverAt"),
              "takenOverBy": data.get("takenOverBy"), "sentAt": data.get("takenOverAt"),
              "sentBy": form.get("emittedBy"), "signedByTransporter": True}
    return _transition(emu, form, ("SIGNED_BY_PRODUCER",), "SENT", user, fields)


def _acceptance(data: dict[str, Any], problems: Problems) -> str | None:
    status = data.get("wasteAcceptationStatus")
    received = data.get("quantityReceived")
    if status in ("ACCEPTED", "PARTIALLY_REFUSED") and (received is None or received <= 0):
        problems.add("quantityReceived", "La quantité reçue doit être supérieure à 0")
    if status in ("REFUSED", "PARTIALLY_REFUSED") and is_blank(data.get("wasteRefusalReason")):
        problems.add("wasteRefusalReason", "Le motif du refus est obligatoire")
    if status is None:
        return None
    return "REFUSED" if status == "REFUSED" else "ACCEPTED"


def mark_as_received(emu: Emulator, form: dict[str, Any], data: dict[str, Any],
                     user: User | None) -> dict[str, Any]:
    if form["status"] != "SENT":
        raise emu.invalid_transition()
    _check_actor(user, form, "recipient.company", None, emu, "destinataire")
    problems = Problems(emu.registry)
    new_status = _acceptance(data, problems) or "RECEIVED"
    _raise(problems)
    return _transition(emu, form, ("SENT",), new_status, user, dict(data))


def mark_as_accepted(emu: Emulator, form: dict[str, Any], data: dict[str, Any],
                     user: User | None) -> dict[str, Any]:
    if form["status"] != "RECEIVED":
        raise emu.invalid_transition()
    _check_actor(user, form, "recipient.company", None, emu, "destinataire")
    problems = Problems(emu.registry)
    new_status = _acceptance(data, problems) or "ACCEPTED"
    _raise(problems)
    return _transition(emu, form, ("RECEIVED",), new_status, user, dict(data))


def mark_as_processed(emu: Emulator, form: dict[str, Any], data: dict[str, Any],
                      user: User | None) -> dict[str, Any]:
    if form["status"] != "ACCEPTED":
        raise emu.invalid_transition()
    _check_actor(user, form, "recipient.company", None, emu, "destinataire")
    problems = Problems(emu.registry)
    code = normalize_operation(data.get("processingOperationDone"))
    mode = data.get("destinationOperationMode")
    if code is None:
        wrong = data.get("processingOperationDone")
        problems.add("processingOperationDone", f"Cette opération de traitement n'existe pas : \"{wrong}\"")
    elif code in NON_FINAL_CODES:
        if mode is not None:
            problems.add("destinationOperationMode", f"Aucun mode de traitement n'est possible pour {code}")
    elif mode is None:
        problems.add("destinationOperationMode", "Le mode de traitement est obligatoire")
    elif (code[0] == "D") != (mode == "ELIMINATION"):
        problems.add("destinationOperationMode", f"Le mode de traitement {mode} ne correspond pas à {code}")
    _raise(problems)
    fields = {**data, "processingOperationDone": code}
    if data.get("noTraceability"):
        new_status = "NO_TRACEABILITY"
    elif code in NON_FINAL_CODES and code != "D 9":
        new_status = "AWAITING_GROUP"
    else:
        new_status = "PROCESSED"
    return _transition(emu, form, ("ACCEPTED",), new_status, user, fields)


def delete_form(emu: Emulator, form: dict[str, Any], user: User) -> dict[str, Any]:
    status = form["status"]
    emitter = get_path(form, "emitter.company.siret")
    if status == "SIGNED_BY_PRODUCER" and emitter not in user.roles:
        raise forbidden("Seul l'émetteur peut supprimer un bordereau signé par le producteur")
    if status not in ("DRAFT", "SEALED", "SIGNED_BY_PRODUCER"):
        raise forbidden("Seuls les bordereaux en brouillon ou en attente de collecte peuvent être supprimés")
    with emu.store.lock:
        form["_deleted"] = True
        emu.touch(form, "DELETED")
    return form


def duplicate_form(emu: Emulator, form: dict[str, Any], user: User) -> dict[str, Any]:
    data = {k: copy.deepcopy(form[k]) for k in _BASE_FIELDS if form.get(k) is not None}
    if isinstance(data.get("wasteDetails"), dict):
        data["wasteDetails"]["quantity"] = 0
    copy_ = create_form(emu, user, data)
    copy_["isDuplicateOf"] = form["readableId"]
    emu.store.save(copy_)
    return copy_


def visible_to(form: dict[str, Any], siret: str, orgs: frozenset[str] | None = None) -> bool:
    """Whether ``forms(siret)`` lists it; ``orgs``: its org ids when known (``Emulator.orgs_of``)."""
    if form["status"] == "DRAFT":
        return siret in (form.get("_draftOwners") or [])
    return siret in (orgs if orgs is not None else org_ids_on(form))


def check_first(first: int | None, maximum: int) -> int:
    if first is None:
        return 50
    if not 1 <= first <= maximum:
        raise GraphQLError(f"`first` doit être compris entre 1 et {maximum}",
                           extensions={"code": "BAD_USER_INPUT"})
    return first
