"""Admin API under ``/_emulator/``: play the other parties, set faults, read the journal.

The connector only ever acts as the producer; the transporter and the destination are people on
the real platform. These routes let tests and demos make them act, through the same lifecycle
functions the GraphQL mutations use, so each step bumps ``updatedAt``, logs and fires webhooks.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import bsd_other, bsdd
from .config import FaultConfig
from .instance import Emulator
from .store import now_iso

__all__ = ["admin_routes"]

_PLATE = "AB-123-CD"


def _bsdd_step(emu: Emulator, form: dict[str, Any], action: str, body: dict[str, Any]) -> dict[str, Any]:
    now = now_iso()
    who = body.get("author", "Emulator")
    if action == "seal":
        return bsdd.mark_as_sealed(emu, form, None)
    if action == "sign-emission":
        quantity = (form.get("wasteDetails") or {}).get("quantity") or 1.0
        return bsdd.sign_emission(emu, form, {"quantity": quantity, "emittedAt": now, "emittedBy": who,
                                              **body.get("input", {})}, None)
    if action == "sign-transport":
        data = {"takenOverAt": now, "takenOverBy": who, "transporterNumberPlate": _PLATE}
        return bsdd.sign_transport(emu, form, {**data, **body.get("input", {})}, None)
    quantity = body.get("quantity", (form.get("wasteDetails") or {}).get("quantity") or 1.0)
    if action in ("receive", "accept", "refuse"):
        refused = action == "refuse"
        data = {"receivedBy": who, "receivedAt": now, "signedAt": now, "quantityReceived": quantity,
                "quantityRefused": quantity if refused else 0.0}
        if action != "receive" or body.get("accept", True):
            data["wasteAcceptationStatus"] = "REFUSED" if refused else "ACCEPTED"
        if refused:
            data["wasteRefusalReason"] = body.get("reason", "Refus simulé par l'émulateur")
        data.update(body.get("input", {}))
        if form["status"] == "RECEIVED":
            accepted: dict[str, Any]
            accepted = {k: data[k] for k in ("wasteAcceptationStatus", "wasteRefusalReason", "signedAt",
                                             "quantityReceived", "quantityRefused") if k in data}
            accepted.setdefault("wasteAcceptationStatus", "ACCEPTED")
            return bsdd.mark_as_accepted(emu, form, {**accepted, "signedBy": who}, None)
        return bsdd.mark_as_received(emu, form, data, None)
    if action == "process":
        code = body.get("operation", (form.get("recipient") or {}).get("processingOperation") or "R 1")
        data = {"processingOperationDone": code, "processedBy": who, "processedAt": now,
                "processingOperationDescription": "Traitement simulé"}
        normalized = (code or "").replace(" ", "")
        if normalized not in ("D9", "D13", "D14", "D15", "R12", "R13"):
            data["destinationOperationMode"] = "ELIMINATION" if normalized.startswith("D") else (
                "VALORISATION_ENERGETIQUE" if normalized == "R1" else "RECYCLAGE")
        data.update(body.get("input", {}))
        return bsdd.mark_as_processed(emu, form, data, None)
    raise KeyError(action)


_OTHER_ACTIONS = {"sign-emission": "EMISSION", "sign-work": "WORK", "sign-transport": "TRANSPORT",
                  "receive": "RECEPTION", "accept": "ACCEPTATION", "process": "OPERATION",
                  "refuse": "RECEPTION"}


def _other_step(emu: Emulator, bsd: dict[str, Any], action: str, body: dict[str, Any]) -> dict[str, Any]:
    kind = bsd["_kind"]
    if action == "seal":
        return bsd_other.publish(emu, kind, bsd)
    signature = _OTHER_ACTIONS[action]
    changes: dict[str, Any] = dict(body.get("changes", {}))
    now = now_iso()
    if action == "refuse":
        if kind == "BSFF":
            signature = "ACCEPTATION" if bsd["status"] == "RECEIVED" else "RECEPTION"
            if signature == "RECEPTION":
                changes.setdefault("destination", {}).setdefault("reception", {"date": now})
            else:
                changes.setdefault("destination", {}).setdefault("reception", {})["acceptation"] = {
                    "status": "REFUSED"}
        elif kind in ("BSDASRI", "BSPAOH"):
            changes.setdefault("destination", {}).setdefault("reception", {})["acceptation"] = {
                "status": "REFUSED", "refusalReason": body.get("reason", "Refus simulé")}
        else:
            changes.setdefault("destination", {}).setdefault("reception", {}).update(
                {"acceptationStatus": "REFUSED", "refusalReason": body.get("reason", "Refus simulé"),
                 "date": now})
    if action == "process":
        changes.setdefault("destination", {}).setdefault("operation", {}).update(
            {"code": body.get("operation") or ((bsd.get("destination") or {}).get("plannedOperationCode")),
             "date": now})
    data = {"type": signature, "author": body.get("author", "Emulator"), "date": now}
    return bsd_other.sign(emu, kind, bsd, data, None, changes)


def admin_routes(emu: Emulator) -> list[Route]:
    """The ``/_emulator/`` routes; mounted only when ``admin_enabled``."""

    async def journal(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            emu.journal.clear()
        return JSONResponse(list(emu.journal))

    async def faults(request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                emu.faults = FaultConfig.model_validate(await request.json())
            except (ValidationError, ValueError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(emu.faults.model_dump(mode="json"))

    async def reset(_: Request) -> JSONResponse:
        emu.reset()
        return JSONResponse({"reset": True})

    async def show(request: Request) -> JSONResponse:
        bsd = emu.store.find(request.path_params["key"])
        if bsd is None:
            return JSONResponse({"error": "unknown BSD"}, status_code=404)
        return JSONResponse(bsd)

    async def act(request: Request) -> JSONResponse:
        key, action = request.path_params["key"], request.path_params["action"]
        body = await request.json() if await request.body() else {}
        bsd = emu.store.find(key)
        if bsd is None:
            return JSONResponse({"error": f"unknown BSD {key!r}"}, status_code=404)
        try:
            with emu.store.lock:
                step = _bsdd_step if bsd["_kind"] == "BSDD" else _other_step
                result = step(emu, bsd, action, body)
        except KeyError:
            valid = "seal, sign-emission, sign-work, sign-transport, receive, accept, refuse, process"
            return JSONResponse({"error": f"unknown action {action!r} (valid: {valid})"}, status_code=404)
        except GraphQLError as error:
            return JSONResponse({"error": error.message, "extensions": error.extensions}, status_code=409)
        return JSONResponse({"id": result["id"], "readableId": result.get("readableId"),
                             "status": result["status"], "updatedAt": result["updatedAt"]})

    async def deliveries(_: Request) -> JSONResponse:
        return JSONResponse(emu.webhooks.deliveries)

    return [
        Route("/_emulator/journal", journal, methods=["GET", "DELETE"]),
        Route("/_emulator/faults", faults, methods=["GET", "PUT"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/webhooks/deliveries", deliveries, methods=["GET"]),
        Route("/_emulator/bsds/{key}", show, methods=["GET"]),
        Route("/_emulator/bsds/{key}/{action}", act, methods=["POST"]),
    ]
