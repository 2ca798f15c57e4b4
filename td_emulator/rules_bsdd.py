"""BSDD checks: formats at create/update (draft), every required field at ``markAsSealed``.

Messages follow the platform's yup validator: one message per problem, joined with newlines,
under a common header when sealing.
"""

from __future__ import annotations

from typing import Any

from .rules_common import Problems, WasteCatalog, get_path, is_blank, normalize_operation
from .seed import Registry
from .validators import is_dangerous_waste_code as is_dangerous_code

__all__ = ["check_draft", "check_sealable"]

_COMPANY_FIELDS = ("name", "address", "contact", "phone", "mail")
_LABELS = {"name": "Nom", "address": "Adresse", "contact": "Contact", "phone": "Téléphone", "mail": "E-mail"}
_MAX_ROAD_TONNES = 40.0
_MAX_TONNES = 50_000.0


def check_draft(form: dict[str, Any], registry: Registry, catalog: WasteCatalog) -> Problems:
    """Checks the platform runs on every create and update, draft or not."""
    problems = Problems(registry)
    for path in ("emitter.company.siret", "recipient.company.siret", "transporter.company.siret",
                 "trader.company.siret", "broker.company.siret", "ecoOrganisme.siret"):
        problems.siret(form, path)
    for index, _ in enumerate(form.get("intermediaries") or []):
        problems.siret(form, f"intermediaries.{index}.siret")
    problems.destination(form, "recipient.company")
    if get_path(form, "transporter.isExemptedOfReceipt") is not True:
        problems.transporter(form, "transporter.company")
    code = get_path(form, "wasteDetails.code")
    if not is_blank(code):
        problem = catalog.problem(code, "BSDD")
        if problem:
            problems.add("wasteDetails.code", problem)
        elif is_dangerous_code(code) and get_path(form, "wasteDetails.isDangerous") is False:
            problems.add("wasteDetails.isDangerous",
                         "Un déchet avec un code comportant un astérisque est forcément dangereux")
    operation = get_path(form, "recipient.processingOperation")
    if not is_blank(operation) and normalize_operation(operation) in (None, "R 0"):
        problems.add("recipient.processingOperation",
                     f"Cette opération de traitement n'existe pas : \"{operation}\"")
    quantity = get_path(form, "wasteDetails.quantity")
    if quantity is not None and quantity < 0:
        problems.add("wasteDetails.quantity", "La quantité doit être supérieure à 0")
    return problems


def check_sealable(form: dict[str, Any], registry: Registry, catalog: WasteCatalog) -> Problems:
    """Everything ``markAsSealed`` requires, on top of the draft checks."""
    problems = check_draft(form, registry, catalog)
    private = get_path(form, "emitter.isPrivateIndividual") is True
    foreign_ship = get_path(form, "emitter.isForeignShip") is True
    problems.require(form, "emitter.type", "Le type d'émetteur")
    if not (private or foreign_ship):
        problems.require(form, "emitter.company.siret", "Émetteur : le SIRET")
    for name in _COMPANY_FIELDS:
        if private and name in ("contact", "phone", "mail"):
            continue
        if not foreign_ship:
            problems.require(form, f"emitter.company.{name}", f"Émetteur : {_LABELS[name]}")
    problems.require(form, "recipient.company.siret", "Destinataire : le SIRET")
    for name in _COMPANY_FIELDS:
        problems.require(form, f"recipient.company.{name}", f"Destinataire : {_LABELS[name]}")
    for role in ("emitter", "recipient"):
        phone = get_path(form, f"{role}.company.phone")
        if isinstance(phone, str) and len(phone) > 20:
            problems.add(f"{role}.company.phone", "Le numéro de téléphone ne peut dépasser 20 caractères")
    if get_path(form, "recipient.isTempStorage") is not True:
        problems.require(form, "recipient.processingOperation", "L'opération de traitement")
    code = get_path(form, "wasteDetails.code")
    dangerous = (isinstance(code, str) and is_dangerous_code(code)) or \
        get_path(form, "wasteDetails.isDangerous") is True
    if dangerous and get_path(form, "emitter.type") != "APPENDIX1":
        problems.require(form, "recipient.cap", "Le CAP (déchet dangereux)")
    problems.require(form, "wasteDetails.code", "Le code déchet")
    problems.require(form, "wasteDetails.name", "L'appellation du déchet")
    adr = get_path(form, "wasteDetails.isSubjectToADR")
    if adr is None:
        problems.add("wasteDetails.isSubjectToADR", "Vous devez préciser si le déchet est soumis à l'ADR")
    elif adr is True:
        problems.require(form, "wasteDetails.onuCode", "La mention ADR (déchet soumis à l'ADR)")
    elif not is_blank(get_path(form, "wasteDetails.onuCode")):
        problems.add("wasteDetails.onuCode",
                     "Le déchet n'est pas soumis à l'ADR : la mention ADR doit être vide")
    problems.require(form, "wasteDetails.quantity", "La quantité")
    problems.require(form, "wasteDetails.quantityType", "Le type de quantité (réelle ou estimée)")
    problems.require(form, "wasteDetails.consistences", "La consistance")
    if get_path(form, "wasteDetails.pop") is None:
        problems.add("wasteDetails.pop",
                     "La présence de polluants organiques persistants (pop) est obligatoire")
    _check_packagings(form, problems)
    road = any((t or {}).get("mode", "ROAD") in (None, "ROAD") for t in form.get("transporters") or [])
    problems.weight(form, "wasteDetails.quantity", _MAX_ROAD_TONNES if road else _MAX_TONNES)
    return problems


def _check_packagings(form: dict[str, Any], problems: Problems) -> None:
    packagings = get_path(form, "wasteDetails.packagingInfos")
    if form.get("isDirectSupply"):
        if packagings:
            problems.add("wasteDetails.packagingInfos", "Un acheminement direct n'a pas de conditionnement")
        return
    if not packagings:
        problems.add("wasteDetails.packagingInfos", "Le conditionnement est obligatoire")
        return
    types = {p.get("type") for p in packagings}
    for index, packaging in enumerate(packagings):
        path = f"wasteDetails.packagingInfos.{index}"
        if (packaging.get("quantity") or 0) < 1:
            problems.add(f"{path}.quantity", "Le nombre de colis doit être un entier supérieur ou égal à 1")
        if packaging.get("type") == "AUTRE" and is_blank(packaging.get("other")):
            problems.add(f"{path}.other", "La description du conditionnement \"AUTRE\" est obligatoire")
        if packaging.get("type") == "PIPELINE":
            problems.add(f"{path}.type", "Le conditionnement PIPELINE n'est plus accepté")
        if packaging.get("type") in ("CITERNE", "BENNE"):
            if (packaging.get("quantity") or 0) > 2:
                problems.add(f"{path}.quantity", "Au maximum 2 citernes ou bennes")
            if len(types) > 1:
                problems.add(f"{path}.type", "Une citerne ou une benne ne peut être mélangée à d'autres "
                             "conditionnements")
