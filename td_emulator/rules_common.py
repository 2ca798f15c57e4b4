"""Checks every BSD kind shares: SIRET and VAT formats, waste codes, registered profiles.

Each check appends ``(path, message)`` problems to a list instead of raising, so that one answer
names every invalid field at once, as the platform's validators do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .seed import DESTINATION_TYPES, Registry
from .validators import siret_problem, vat_problem, waste_code_format_ok

__all__ = ["Problems", "WasteCatalog", "get_path", "is_blank"]

# Treatment operations with their spelling on BSDD/BSDA/BSVHU/BSPAOH ("D 9 F"); BSFF and BSDASRI
# use the compact spelling ("D9F").
OPERATION_CODES = ("R 0", *(f"R {n}" for n in range(1, 14)), "D 1", "D 2", "D 3", "D 4", "D 5", "D 8",
                   "D 9", "D 9 F", "D 10", "D 12", "D 13", "D 14", "D 15")
NON_FINAL_CODES = frozenset({"D 9", "D 13", "D 14", "D 15", "R 12", "R 13"})


def get_path(data: Any, path: str) -> Any:
    """``get_path(bsd, "emitter.company.siret")``; None as soon as one step is missing."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def normalize_operation(code: str | None) -> str | None:
    """``D10``, ``D 10``, ``D9 F`` -> the spaced spelling, or None when it is no operation code."""
    if not code:
        return None
    compact = code.replace(" ", "").upper()
    return next((c for c in OPERATION_CODES if c.replace(" ", "") == compact), None)


PACKAGED_WASTE_CODES = Path(__file__).with_name("data") / "waste_codes.json"
"""The emulator's own copy of the nomenclature; the catalog checks formats only while it is absent."""


@dataclass
class WasteCatalog:
    """European waste codes and the kinds each is accepted on; empty means format checks only.

    A code whose entry names no kinds (``accepted_on`` missing) is accepted on every kind.
    """

    accepted_on: dict[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> WasteCatalog:
        """Read ``{"codes": [{"code": "01 01 01", "accepted_on": ["BSDD"], ...}, ...]}``.

        Tolerant to the rest of the layout: a bare list of entries is accepted too, entries may be
        plain strings, unknown keys are ignored. A file with no usable code is an error.
        """
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data.get("codes") if isinstance(data, dict) else data
        accepted: dict[str, frozenset[str] | None] = {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, str):
                accepted[item] = None
            elif isinstance(item, dict) and isinstance(item.get("code"), str):
                kinds = item.get("accepted_on")
                accepted[item["code"]] = (frozenset(k for k in kinds if isinstance(k, str))
                                          if isinstance(kinds, list) else None)
        if not accepted:
            raise ValueError(f"{path}: no waste code found (expected {{\"codes\": [{{\"code\": ...}}]}})")
        return cls(accepted)

    @classmethod
    def packaged(cls) -> WasteCatalog:
        """The packaged nomenclature when the package carries it, else format checks only."""
        return cls.from_file(PACKAGED_WASTE_CODES) if PACKAGED_WASTE_CODES.is_file() else cls()

    def problem(self, code: str, kind: str) -> str | None:
        if not waste_code_format_ok(code):
            return f"Le code déchet \"{code}\" n'est pas au format \"NN NN NN\" (avec * si dangereux)"
        if not self.accepted_on:
            return None
        if code not in self.accepted_on:
            return f"Le code déchet \"{code}\" n'existe pas dans la liste européenne des déchets"
        kinds = self.accepted_on[code]
        if kinds is not None and kind not in kinds:
            return f"Le code déchet \"{code}\" n'est pas autorisé sur un {kind}"
        return None


class Problems:
    """Problems found in one payload, each tied to its GraphQL path."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def require(self, data: dict[str, Any], path: str, label: str | None = None) -> None:
        if is_blank(get_path(data, path)):
            self.add(path, f"{label or path} est obligatoire")

    def siret(self, data: dict[str, Any], path: str) -> None:
        value = get_path(data, path)
        if is_blank(value):
            return
        problem = siret_problem(str(value))
        if problem:
            self.add(path, f"{path} : le SIRET \"{value}\" n'est pas valide ({problem})")

    def registered(self, data: dict[str, Any], company_path: str, types: frozenset[str] | set[str],
                   role: str) -> None:
        """The company at ``company_path`` (SIRET or VAT) must be registered with one of ``types``."""
        company = get_path(data, company_path) or {}
        org_id = company.get("siret") or company.get("vatNumber")
        if is_blank(org_id):
            return
        if company.get("vatNumber") and not company.get("siret") and vat_problem(company["vatNumber"]):
            self.add(f"{company_path}.vatNumber",
                     f"{company_path}.vatNumber : \"{org_id}\" n'est pas un numéro de TVA valide")
            return
        if company.get("vatNumber", "").startswith("FR") and not company.get("siret"):
            self.add(f"{company_path}.vatNumber", "Impossible d'utiliser le numéro de TVA pour un "
                     "établissement français, veuillez renseigner son SIRET uniquement")
            return
        if org_id not in self.registry.companies:
            self.add(f"{company_path}.siret", f"L'établissement {role} \"{org_id}\" n'est pas inscrit sur "
                     "Trackdéchets")
        elif not self.registry.has_type(org_id, types):
            self.add(f"{company_path}.siret", f"L'établissement {role} \"{org_id}\" n'a pas le profil requis "
                     f"({' ou '.join(sorted(types))})")

    def destination(self, data: dict[str, Any], company_path: str) -> None:
        self.registered(data, company_path, DESTINATION_TYPES, "de destination")

    def transporter(self, data: dict[str, Any], company_path: str) -> None:
        self.registered(data, company_path, {"TRANSPORTER"}, "de transport")

    def weight(self, data: dict[str, Any], path: str, max_value: float) -> None:
        value = get_path(data, path)
        if value is None:
            return
        if value <= 0:
            self.add(path, f"{path} : la quantité doit être supérieure à 0")
        elif value > max_value:
            self.add(path, f"{path} : la quantité ne peut dépasser {max_value:g}")

    def as_issues(self) -> list[dict[str, Any]]:
        return [{"code": "custom", "message": message, "path": path.split(".")}
                for path, message in self.items]
