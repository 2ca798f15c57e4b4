"""What ``createX``/``publishX`` require for BSDA, BSVHU, BSDASRI, BSFF and BSPAOH (zod kinds).

A table per kind instead of five validators: required paths at the EMISSION level, where the
waste code sits, which company must be registered with which profile. Problems come back as zod
issues (``{code, message, path}``) like the platform's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .rules_common import Problems, WasteCatalog, get_path, is_blank
from .seed import DESTINATION_TYPES, Registry

__all__ = ["KIND_SPECS", "KindSpec", "check_draft", "check_publishable"]

_COMPANY = ("name", "siret", "address", "contact", "phone", "mail")


def _company(prefix: str, fields: tuple[str, ...] = _COMPANY) -> tuple[str, ...]:
    return tuple(f"{prefix}.company.{name}" for name in fields)


@dataclass(frozen=True)
class KindSpec:
    kind: str
    object_type: str
    prefix: str
    waste_code_path: str
    required: tuple[str, ...]
    registered: tuple[tuple[str, frozenset[str], str], ...]
    """(company path, accepted profiles, role label)."""
    operation_codes: frozenset[str] | None = None
    operation_path: str = "destination.plannedOperationCode"
    weight_path: str | None = None
    max_weight: float = 50_000.0
    draft_status: str = "INITIAL"
    emitted_status: str = "SIGNED_BY_PRODUCER"
    extra: dict[str, Any] = field(default_factory=dict)


_TRANSPORTER = ("transporter.company", frozenset({"TRANSPORTER"}), "de transport")
_DESTINATION = ("destination.company", DESTINATION_TYPES, "de destination")

KIND_SPECS: dict[str, KindSpec] = {
    "BSDA": KindSpec(
        "BSDA", "Bsda", "BSDA", "waste.code",
        (*_company("emitter", ("name", "address")), *_company("destination"),
         "destination.plannedOperationCode", "waste.code", "waste.familyCode", "waste.materialName",
         "waste.consistence", "packagings", "weight.value"),
        (_DESTINATION, _TRANSPORTER, ("worker.company", frozenset({"WORKER"}), "de travaux")),
        frozenset({"R 5", "D 5", "D 9 F", "R 13", "D 15"}), weight_path="weight.value",
    ),
    "BSVHU": KindSpec(
        "BSVHU", "Bsvhu", "VHU", "wasteCode",
        (*_company("emitter", ("name", "address", "contact")), "destination.type",
         "destination.plannedOperationCode", *_company("destination"), "wasteCode", "packaging",
         "identification.numbers", "quantity", "weight.value"),
        (("destination.company", frozenset({"WASTE_VEHICLES"}), "de destination (VHU)"), _TRANSPORTER),
        weight_path="weight.value",
    ),
    "BSDASRI": KindSpec(
        "BSDASRI", "Bsdasri", "DASRI", "waste.code",
        (*_company("emitter"), "waste.code", "waste.adr", "emitter.emission.packagings",
         *_company("destination", ("name", "siret", "address", "contact", "phone", "mail"))),
        (_DESTINATION, _TRANSPORTER),
        weight_path="emitter.emission.weight.value", max_weight=50_000_000.0,
    ),
    "BSFF": KindSpec(
        "BSFF", "Bsff", "FF", "waste.code",
        ("type", *_company("emitter"), "waste.code", "waste.adr", "weight.value", "packagings",
         *_company("destination"), "destination.plannedOperationCode"),
        (_DESTINATION, _TRANSPORTER),
        weight_path="weight.value", max_weight=50_000_000.0, emitted_status="SIGNED_BY_EMITTER",
    ),
    "BSPAOH": KindSpec(
        "BSPAOH", "Bspaoh", "PAOH", "waste.code",
        (*_company("emitter"), "waste.code", "waste.type", "waste.packagings",
         "emitter.emission.detail.weight.value", *_company("destination")),
        (_DESTINATION, _TRANSPORTER),
        weight_path="emitter.emission.detail.weight.value", max_weight=50_000_000.0, draft_status="DRAFT",
    ),
}

_SIRET_PATHS = ("emitter.company.siret", "destination.company.siret", "transporter.company.siret",
                "worker.company.siret", "broker.company.siret", "trader.company.siret",
                "ecoOrganisme.siret")


def check_draft(spec: KindSpec, bsd: dict[str, Any], registry: Registry, catalog: WasteCatalog) -> Problems:
    """Format and registration checks run on every create and update."""
    problems = Problems(registry)
    for path in _SIRET_PATHS:
        problems.siret(bsd, path)
    for company_path, types, role in spec.registered:
        if company_path == "worker.company" and get_path(bsd, "worker.isDisabled") is True:
            continue
        if company_path == "transporter.company" and \
                get_path(bsd, "transporter.recepisse.isExempted") is True:
            continue
        problems.registered(bsd, company_path, types, role)
    code = get_path(bsd, spec.waste_code_path)
    if not is_blank(code):
        problem = catalog.problem(code, spec.kind)
        if problem:
            problems.add(spec.waste_code_path, problem)
    if spec.weight_path:
        problems.weight(bsd, spec.weight_path, spec.max_weight)
    return problems


def check_publishable(spec: KindSpec, bsd: dict[str, Any], registry: Registry,
                      catalog: WasteCatalog) -> Problems:
    """Everything needed before the first signature (``createX`` and ``publishX``)."""
    problems = check_draft(spec, bsd, registry, catalog)
    private = get_path(bsd, "emitter.isPrivateIndividual") is True
    no_siret = get_path(bsd, "emitter.noSiret") is True
    for path in spec.required:
        if path.startswith("emitter.company.") and path.rsplit(".", 1)[1] in ("siret", "contact", "phone",
                                                                            "mail") and (private or no_siret):
            continue
        problems.require(bsd, path, f"Le champ {path}")
    if spec.kind == "BSDA" and bsd.get("type", "OTHER_COLLECTIONS") == "OTHER_COLLECTIONS" and \
            get_path(bsd, "worker.isDisabled") is not True:
        for path in _company("worker"):
            problems.require(bsd, path, f"Le champ {path}")
    if spec.kind == "BSDA" and bsd.get("type") != "COLLECTION_2710":
        problems.require(bsd, "destination.cap", "Le champ destination.cap")
    if spec.kind == "BSDA":
        for path in ("emitter.company.siret", "emitter.company.contact", "emitter.company.phone",
                     "emitter.company.mail"):
            if not private:
                problems.require(bsd, path, f"Le champ {path}")
    if spec.kind == "BSVHU" and get_path(bsd, "emitter.irregularSituation") is not True:
        problems.registered(bsd, "emitter.company", frozenset({"WASTE_VEHICLES", "PRODUCER"}),
                            "émetteur (VHU)")
    operation = get_path(bsd, spec.operation_path)
    if spec.operation_codes is not None and not is_blank(operation) and operation not in spec.operation_codes:
        problems.add(spec.operation_path, f"Le code d'opération \"{operation}\" n'est pas autorisé "
                     f"(valeurs possibles : {', '.join(sorted(spec.operation_codes))})")
    return problems
