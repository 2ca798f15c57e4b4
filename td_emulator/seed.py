"""Users, tokens and registered companies the emulator knows, from the demo seed or a file.

The real platform manages accounts only in its UI; the emulator takes them from a TOML or JSON
file instead::

    [[companies]]
    siret = "44019372000255"        # or vatNumber = "BE0123456789"
    name = "Centre de traitement"
    companyTypes = ["WASTEPROCESSOR"]

    [[users]]
    token = "secret-token"
    email = "someone@example.org"
    companies = { "44019372000255" = "ADMIN" }
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .demo_seed import DEMO_ACCOUNTS

__all__ = [
    "GROUP_TOKEN", "Company", "Registry", "User", "add_group_token", "demo_registry", "group_sirets",
    "load_seed",
]

GROUP_TOKEN = "group-token-many-companies-0003"
"""Token of the user ``add_group_token`` registers: a group holding many establishments."""

DESTINATION_TYPES = frozenset({"COLLECTOR", "WASTEPROCESSOR", "WASTE_CENTER", "DISPOSAL_FACILITY"})


@dataclass
class Company:
    org_id: str
    """SIRET, or VAT number for a foreign company (the platform's ``orgId``)."""
    name: str
    company_types: tuple[str, ...]
    siret: str | None = None
    vat_number: str | None = None
    address: str = ""
    contact: str = ""
    phone: str = ""
    mail: str = ""
    security_code: int = 1234

    @property
    def id(self) -> str:
        """Opaque id, stable across restarts (``createWebhookSetting`` takes it, not the SIRET)."""
        return "c" + hashlib.sha256(self.org_id.encode()).hexdigest()[:24]


@dataclass
class User:
    id: str
    email: str
    name: str
    token: str
    roles: dict[str, str] = field(default_factory=dict)
    """orgId -> ADMIN | MEMBER | DRIVER | READER."""


@dataclass
class Registry:
    companies: dict[str, Company] = field(default_factory=dict)
    users_by_token: dict[str, User] = field(default_factory=dict)

    def add_company(self, company: Company) -> None:
        self.companies[company.org_id] = company

    def add_user(self, user: User) -> None:
        self.users_by_token[user.token] = user

    def user_for(self, token: str | None) -> User | None:
        return self.users_by_token.get(token) if token else None

    def company_by_id(self, company_id: str) -> Company | None:
        return next((c for c in self.companies.values() if c.id == company_id), None)

    def has_type(self, org_id: str | None, types: frozenset[str] | set[str]) -> bool:
        company = self.companies.get(org_id or "")
        return company is not None and bool(types & set(company.company_types))


def demo_registry() -> Registry:
    """The companies of ``demo_seed.DEMO_ACCOUNTS``, one ADMIN user per company."""
    registry = Registry()
    for demo in DEMO_ACCOUNTS:
        registry.add_company(Company(
            org_id=demo.siret, siret=demo.siret, name=demo.name, company_types=demo.company_types,
            address=demo.address, contact=demo.contact, phone=demo.phone, mail=demo.mail,
        ))
        registry.add_user(User(id=f"user-{demo.key}", email=demo.mail, name=demo.contact, token=demo.token,
                               roles={demo.siret: "ADMIN"}))
    return registry


def load_seed(path: Path, registry: Registry | None = None) -> Registry:
    """Add the users and companies of a TOML or JSON seed file to ``registry`` (a new one if None)."""
    registry = registry or Registry()
    raw = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    problems: list[str] = []
    for index, item in enumerate(data.get("companies", [])):
        org_id = item.get("siret") or item.get("vatNumber")
        if not org_id or not item.get("name"):
            problems.append(f"{path}: companies[{index}]: needs siret (or vatNumber) and name")
            continue
        registry.add_company(Company(
            org_id=org_id, siret=item.get("siret"), vat_number=item.get("vatNumber"), name=item["name"],
            company_types=tuple(item.get("companyTypes", ["PRODUCER"])), address=item.get("address", ""),
            contact=item.get("contact", ""), phone=item.get("phone", ""), mail=item.get("mail", ""),
            security_code=int(item.get("securityCode", 1234)),
        ))
    for index, item in enumerate(data.get("users", [])):
        if not item.get("token") or not item.get("email"):
            problems.append(f"{path}: users[{index}]: needs token and email")
            continue
        roles = item.get("companies", {})
        if isinstance(roles, list):
            roles = dict.fromkeys(roles, "ADMIN")
        unknown = [org for org in roles if org not in registry.companies]
        if unknown:
            problems.append(f"{path}: users[{index}]: unknown companies {unknown} (declare them first)")
        registry.add_user(User(id=item.get("id", f"user-{index}-{item['email']}"), email=item["email"],
                               name=item.get("name", item["email"]), token=item["token"], roles=roles))
    if problems:
        raise ValueError("invalid emulator seed:\n" + "\n".join(problems))
    return registry


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def group_sirets(count: int) -> list[str]:
    """``count`` distinct Luhn-valid SIRETs, always the same ones (``77`` + index + check digit)."""
    return [(body := f"77{index:011d}") + _luhn_digit(body) for index in range(count)]


def add_group_token(registry: Registry, count: int, token: str = GROUP_TOKEN) -> list[str]:
    """Register ``count`` companies (producer and destination alike) and one ADMIN user of all.

    The shape of a group or a collector: one token for hundreds of establishments. The names are
    numbered so that ``myCompanies`` (ordered by name) lists them in the order returned here.
    """
    sirets = group_sirets(count)
    for index, siret in enumerate(sirets):
        registry.add_company(Company(
            org_id=siret, siret=siret, name=f"Etablissement {index:05d}",
            company_types=("PRODUCER", "COLLECTOR", "WASTEPROCESSOR"),
            address=f"{index} rue du Groupe, 69000 Lyon", contact="Exploitation",
            phone="04 72 00 10 00", mail=f"site{index}@groupe.example",
        ))
    registry.add_user(User(id=f"user-group-{token[-8:]}", email="groupe@groupe.example",
                           name="Groupe", token=token, roles=dict.fromkeys(sirets, "ADMIN")))
    return sirets
