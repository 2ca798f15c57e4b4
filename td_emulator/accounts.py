"""``me``, ``myCompanies`` and the webhook settings: what a client needs to know who it is."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlparse

from graphql import GraphQLResolveInfo

from .gql_errors import bad_user_input, forbidden
from .instance import Emulator
from .seed import Company, User
from .store import now_iso

__all__ = ["account_resolvers", "company_node"]


def _emu(info: GraphQLResolveInfo[Any]) -> Emulator:
    return info.context["emulator"]  # type: ignore[no-any-return]


def company_node(company: Company, role: str | None) -> dict[str, Any]:
    return {"id": company.id, "orgId": company.org_id, "siret": company.siret,
            "vatNumber": company.vat_number, "name": company.name, "givenName": company.name,
            "address": company.address,
            "contact": company.contact, "contactEmail": company.mail, "contactPhone": company.phone,
            "companyTypes": list(company.company_types), "userRole": role,
            "securityCode": company.security_code}


MAX_PAGE = 500
"""The platform's cap on ``first`` of its Relay connections (default 50 when not given)."""


def _user_companies(emu: Emulator, user: User) -> list[dict[str, Any]]:
    """The user's companies by name, then by registration, as the platform orders ``myCompanies``."""
    registered = {org: index for index, org in enumerate(emu.registry.companies)}
    orgs = sorted((org for org in user.roles if org in registered),
                  key=lambda org: (emu.registry.companies[org].name, registered[org]))
    return [company_node(emu.registry.companies[org], user.roles[org]) for org in orgs]


def _connection(nodes: list[dict[str, Any]], first: int | None, after: str | None) -> dict[str, Any]:
    if first is not None and not 1 <= first <= MAX_PAGE:
        raise bad_user_input(f"`first` doit être inférieur à {MAX_PAGE}" if first > 0
                             else "`first` doit être positif")
    total = len(nodes)
    if after is not None:
        index = next((i for i, n in enumerate(nodes) if n["id"] == after), len(nodes))
        nodes = nodes[index + 1:]
    size = first or 50
    page = nodes[:size]
    return {"totalCount": total, "edges": [{"cursor": n["id"], "node": n} for n in page],
            "pageInfo": {"startCursor": page[0]["id"] if page else None,
                         "endCursor": page[-1]["id"] if page else None,
                         "hasNextPage": len(nodes) > size, "hasPreviousPage": after is not None}}


def resolve_me(_: Any, info: GraphQLResolveInfo[Any]) -> dict[str, Any]:
    user = Emulator.require_user(info.context)
    return {"id": user.id, "email": user.email, "name": user.name, "isAdmin": False,
            "companies": _user_companies(_emu(info), user)}


def resolve_my_companies(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    user = Emulator.require_user(info.context)
    nodes = _user_companies(_emu(info), user)
    if args.get("search"):
        clue = args["search"].lower()
        nodes = [n for n in nodes if clue in (n["name"] or "").lower() or clue in n["orgId"]]
    return _connection(nodes, args.get("first"), args.get("after"))


def _public(setting: dict[str, Any]) -> dict[str, Any]:
    return setting  # the token is kept under "_token", which the schema never exposes


def _admin_org(emu: Emulator, user: User, company_id: str) -> str:
    company = emu.registry.company_by_id(company_id)
    if company is None or user.roles.get(company.org_id) != "ADMIN":
        raise forbidden("Vous devez être administrateur de l'établissement pour gérer ses webhooks")
    return company.org_id


def _check_endpoint(emu: Emulator, uri: str, token: str) -> None:
    problems = []
    parsed = urlparse(uri)
    allowed = ("https", "http") if emu.config.webhooks.allow_insecure else ("https",)
    if parsed.scheme not in allowed or not parsed.netloc:
        problems.append("L'URL doit être en https")
    if len(uri) > 300:
        problems.append("L'URL ne peut dépasser 300 caractères")
    if not 20 <= len(token) <= 100:
        problems.append("Le token doit faire entre 20 et 100 caractères")
    if problems:
        raise bad_user_input("\n".join(problems))


def resolve_create_webhook(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    emu = _emu(info)
    user = Emulator.require_user(info.context)
    data = args["input"]
    org_id = _admin_org(emu, user, data["companyId"])
    _check_endpoint(emu, data["endpointUri"], data["token"])
    mine = [s for s in emu.store.webhooks.values() if s["orgId"] == org_id]
    if mine:
        raise bad_user_input("Cet établissement a atteint le nombre maximum de webhooks (1)")
    setting = {"id": "wh" + secrets.token_hex(8), "createdAt": now_iso(), "endpointUri": data["endpointUri"],
               "orgId": org_id, "activated": data["activated"], "_token": data["token"]}
    emu.store.save_webhook(setting)
    return _public(setting)


def _owned_setting(emu: Emulator, user: User, setting_id: str) -> dict[str, Any]:
    setting = emu.store.webhooks.get(setting_id)
    if setting is None or user.roles.get(setting["orgId"]) != "ADMIN":
        raise forbidden("Vous n'avez pas accès à ce webhook")
    return setting


def resolve_update_webhook(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    emu = _emu(info)
    user = Emulator.require_user(info.context)
    setting = _owned_setting(emu, user, args["id"])
    data = args["input"]
    if data.get("endpointUri") is not None or data.get("token") is not None:
        _check_endpoint(emu, data.get("endpointUri") or setting["endpointUri"],
                        data.get("token") or setting["_token"])
    for key, target in (("endpointUri", "endpointUri"), ("token", "_token"), ("activated", "activated")):
        if data.get(key) is not None:
            setting[target] = data[key]
    emu.store.save_webhook(setting)
    return _public(setting)


def resolve_delete_webhook(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    emu = _emu(info)
    setting = _owned_setting(emu, Emulator.require_user(info.context), args["id"])
    emu.store.delete_webhook(setting["id"])
    return _public(setting)


def resolve_webhook_settings(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    emu = _emu(info)
    user = Emulator.require_user(info.context)
    nodes = [s for s in emu.store.webhooks.values() if user.roles.get(s["orgId"]) == "ADMIN"]
    return _connection(nodes, args.get("first"), args.get("after"))


def resolve_webhook_setting(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    return _owned_setting(_emu(info), Emulator.require_user(info.context), args["id"])


def account_resolvers() -> tuple[dict[str, Any], dict[str, Any]]:
    queries = {"me": resolve_me, "myCompanies": resolve_my_companies,
               "webhooksettings": resolve_webhook_settings, "webhooksetting": resolve_webhook_setting}
    mutations = {"createWebhookSetting": resolve_create_webhook,
                 "updateWebhookSetting": resolve_update_webhook,
                 "deleteWebhookSetting": resolve_delete_webhook}
    return queries, mutations
