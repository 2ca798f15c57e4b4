"""GraphQL resolvers of the BSDD queries and mutations; the rules live in ``bsdd``."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from . import bsdd
from .gql_errors import bad_user_input, forbidden
from .instance import Emulator, org_ids_on
from .rules_common import get_path
from .schema import parse_datetime

__all__ = ["bsdd_resolvers"]

_ROLE_PATHS = {
    "EMITTER": ("emitter.company.siret",), "RECIPIENT": ("recipient.company.siret",),
    "TRANSPORTER": ("transporter.company.siret", "transporter.company.vatNumber"),
    "TRADER": ("trader.company.siret",), "BROKER": ("broker.company.siret",),
    "ECO_ORGANISME": ("ecoOrganisme.siret",),
}


def _emu(info: GraphQLResolveInfo[Any]) -> Emulator:
    return info.context["emulator"]  # type: ignore[no-any-return]


def _user_siret(info: GraphQLResolveInfo[Any], siret: str | None) -> str:
    user = Emulator.require_user(info.context)
    if siret is None:
        if len(user.roles) != 1:
            raise bad_user_input("Vous devez préciser pour quel siret vous souhaitez récupérer les "
                                 "bordereaux", invalidArgs=["siret"])
        return next(iter(user.roles))
    if siret not in user.roles:
        raise forbidden(f"Vous n'avez pas la permission d'accéder aux bordereaux de l'établissement {siret}")
    return siret


def resolve_form(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    user = Emulator.require_user(info.context)
    key = args.get("id") or args.get("readableId")
    if not key:
        raise bad_user_input("Vous devez préciser un identifiant", invalidArgs=["id", "readableId"])
    return _emu(info).load("BSDD", key, user)


def _matches_role(emu: Emulator, form: dict[str, Any], siret: str, roles: list[str] | None) -> bool:
    if not roles:
        return bsdd.visible_to(form, siret, emu.orgs_of(form))
    if form["status"] == "DRAFT" and siret not in (form.get("_draftOwners") or []):
        return False
    return any(get_path(form, path) == siret for role in roles for path in _ROLE_PATHS.get(role, ()))


def _keep(emu: Emulator, form: dict[str, Any], siret: str, args: dict[str, Any], since: str | None,
          sent_since: str | None) -> bool:
    if since and form["updatedAt"] < since:  # the cheap filters first: tokens of many companies
        return False
    if args.get("customId") is not None and form.get("customId") != args["customId"]:
        return False
    if not _matches_role(emu, form, siret, args.get("roles")):
        return False
    if sent_since and (form.get("sentAt") or "") < sent_since:
        return False
    if args.get("status") and form["status"] not in args["status"]:
        return False
    if args.get("wasteCode") and get_path(form, "wasteDetails.code") != args["wasteCode"]:
        return False
    present = args.get("siretPresentOnForm")
    return not (present and present not in org_ids_on(form))


def resolve_forms(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> list[dict[str, Any]]:
    """Newest-created first, like the platform (not by ``updatedAt``): clients must walk all pages."""
    siret = _user_siret(info, args.get("siret"))
    since = parse_datetime(args["updatedAfter"]) if args.get("updatedAfter") else None
    sent_since = parse_datetime(args["sentAfter"]) if args.get("sentAfter") else None
    emu = _emu(info)
    items = [f for f in emu.store.newest_first("BSDD") if _keep(emu, f, siret, args, since, sent_since)]
    if args.get("last") is not None or args.get("cursorBefore") is not None:
        size = bsdd.check_first(args.get("last"), 100)
        if args.get("cursorBefore") is not None:
            index: int | None = next((i for i, f in enumerate(items) if f["id"] == args["cursorBefore"]),
                                     len(items))
            items = items[:index]
        return items[-size:]
    size = bsdd.check_first(args.get("first"), 100)
    cursor = args.get("cursorAfter")
    if cursor is not None:
        index = next((i for i, f in enumerate(items) if f["id"] == cursor), None)
        if index is None:
            raise bad_user_input(f"Le curseur \"{cursor}\" ne correspond à aucun bordereau",
                                 invalidArgs=["cursorAfter"])
        items = items[index + 1:]
    return items[:size]


def resolve_forms_life_cycle(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    """Status logs newest first, 100 per page; ``loggedAfter`` is the lower bound (``>=``)."""
    siret = _user_siret(info, args.get("siret"))
    emu = _emu(info)
    after = parse_datetime(args["loggedAfter"]) if args.get("loggedAfter") else None
    before = parse_datetime(args["loggedBefore"]) if args.get("loggedBefore") else None
    form_id = args.get("formId")
    logs = []
    for log in reversed(emu.store.status_logs):
        form = emu.store.bsds.get("BSDD", {}).get(log["form"]["id"])
        if form is None or not bsdd.visible_to(form, siret) or (form_id and form["id"] != form_id):
            continue
        if (after and log["loggedAt"] < after) or (before and log["loggedAt"] > before):
            continue
        logs.append(log)
    start = 0
    if args.get("cursorAfter"):
        start = next((i + 1 for i, log in enumerate(logs) if log["id"] == args["cursorAfter"]), len(logs))
    elif args.get("cursorBefore"):
        end = next((i for i, log in enumerate(logs) if log["id"] == args["cursorBefore"]), 0)
        start = max(0, end - 100)
    page = logs[start:start + 100]
    return {"statusLogs": page, "hasNextPage": start + 100 < len(logs), "hasPreviousPage": start > 0,
            "startCursor": page[0]["id"] if page else None, "endCursor": page[-1]["id"] if page else None,
            "count": len(page)}


def _mutation(step: str):  # type: ignore[no-untyped-def]
    """Resolver for a status mutation ``step(emu, form, data, user[, security_code])``."""
    def resolve(_: Any, info: GraphQLResolveInfo[Any], id: str, **args: Any) -> dict[str, Any]:
        emu = _emu(info)
        user = Emulator.require_user(info.context)
        form = emu.load("BSDD", id, user)
        security_code = args.pop("securityCode", None)
        data: dict[str, Any] = next(iter(args.values()), {})
        if step == "mark_as_sealed":
            return bsdd.mark_as_sealed(emu, form, user)
        if step in ("delete_form", "duplicate_form"):
            return getattr(bsdd, step)(emu, form, user)  # type: ignore[no-any-return]
        if step in ("sign_emission", "sign_transport"):
            return getattr(bsdd, step)(emu, form, data, user, security_code)  # type: ignore[no-any-return]
        return getattr(bsdd, step)(emu, form, data, user)  # type: ignore[no-any-return]
    return resolve


def resolve_create_form(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    user = Emulator.require_user(info.context)
    return bsdd.create_form(_emu(info), user, args["createFormInput"])


def resolve_update_form(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    emu = _emu(info)
    user = Emulator.require_user(info.context)
    data = args["updateFormInput"]
    form = emu.load("BSDD", data["id"], user)
    return bsdd.update_form(emu, user, form, data)


def bsdd_resolvers() -> tuple[dict[str, Any], dict[str, Any]]:
    """(query resolvers, mutation resolvers) by root field name."""
    queries = {"form": resolve_form, "forms": resolve_forms, "formsLifeCycle": resolve_forms_life_cycle}
    mutations: dict[str, Any] = {"createForm": resolve_create_form, "updateForm": resolve_update_form}
    for name, step in (("markAsSealed", "mark_as_sealed"), ("signEmissionForm", "sign_emission"),
                       ("signTransportForm", "sign_transport"), ("markAsReceived", "mark_as_received"),
                       ("markAsAccepted", "mark_as_accepted"), ("markAsProcessed", "mark_as_processed"),
                       ("deleteForm", "delete_form"), ("duplicateForm", "duplicate_form")):
        mutations[name] = _mutation(step)
    return queries, mutations

