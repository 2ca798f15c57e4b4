"""The six BSD kinds and what differs between them, as data.

Every place that needs to know "which mutation creates a BSDA" or "is SENT a terminal status for
a BSFF" reads this table instead of branching on the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["KINDS", "WASTE_CODE_PATHS", "BsdKind", "KindName", "get_kind"]


class KindName(StrEnum):
    BSDD = "BSDD"
    BSDA = "BSDA"
    BSDASRI = "BSDASRI"
    BSFF = "BSFF"
    BSVHU = "BSVHU"
    BSPAOH = "BSPAOH"


@dataclass(frozen=True)
class BsdKind:
    name: KindName
    object_type: str
    """GraphQL object returned by the mutations (``Form``, ``Bsda``...)."""
    input_type: str
    """Input type a mapping fills in (``CreateFormInput`` for BSDD, ``BsdaInput``...)."""
    create_mutation: str
    """Creates a draft: nothing is checked beyond formats, the BSD can still be edited freely."""
    create_argument: str
    update_mutation: str
    seal_mutation: str
    """``markAsSealed`` / ``publishX``: runs the full checks and makes the BSD visible to others."""
    one_query: str
    list_query: str
    statuses: tuple[str, ...]
    draft_status: str
    """Status right after the draft is created."""
    sealed_status: str
    """Status right after sealing/publishing, before any signature."""
    terminal_statuses: frozenset[str]
    has_custom_id: bool
    """Only BSDD and BSVHU carry a client-side id the platform can filter on."""
    weight_unit: str
    """``t`` or ``kg``: the unit of the kind's weight fields."""
    id_prefix: str

    def is_signed(self, status: str, is_draft: bool = False) -> bool:
        """Whether a signature has happened: from then on the connector must not edit the BSD."""
        if is_draft:
            return False
        return status not in (self.draft_status, self.sealed_status)


_BSDD_STATUSES = (
    "DRAFT", "SEALED", "SIGNED_BY_PRODUCER", "SENT", "RECEIVED", "ACCEPTED", "PROCESSED",
    "FOLLOWED_WITH_PNTTD", "AWAITING_GROUP", "GROUPED", "NO_TRACEABILITY", "REFUSED", "TEMP_STORED",
    "TEMP_STORER_ACCEPTED", "RESEALED", "SIGNED_BY_TEMP_STORER", "RESENT", "CANCELED",
)


def _other(name: KindName, obj: str, prefix: str, unit: str, statuses: tuple[str, ...],
           terminal: set[str], *, custom_id: bool = False, draft_status: str = "INITIAL") -> BsdKind:
    return BsdKind(
        name=name,
        object_type=obj,
        input_type=f"{obj}Input",
        create_mutation=f"createDraft{obj}",
        create_argument="input",
        update_mutation=f"update{obj}",
        seal_mutation=f"publish{obj}",
        one_query=obj[0].lower() + obj[1:],
        list_query=obj[0].lower() + obj[1:] + "s",
        statuses=statuses,
        draft_status=draft_status,
        sealed_status="INITIAL",
        terminal_statuses=frozenset(terminal),
        has_custom_id=custom_id,
        weight_unit=unit,
        id_prefix=prefix,
    )


KINDS: dict[KindName, BsdKind] = {
    KindName.BSDD: BsdKind(
        name=KindName.BSDD,
        object_type="Form",
        input_type="CreateFormInput",
        create_mutation="createForm",
        create_argument="createFormInput",
        update_mutation="updateForm",
        seal_mutation="markAsSealed",
        one_query="form",
        list_query="forms",
        statuses=_BSDD_STATUSES,
        draft_status="DRAFT",
        sealed_status="SEALED",
        terminal_statuses=frozenset(
            {"PROCESSED", "FOLLOWED_WITH_PNTTD", "NO_TRACEABILITY", "REFUSED", "CANCELED"}
        ),
        has_custom_id=True,
        weight_unit="t",
        id_prefix="BSD",
    ),
    KindName.BSDA: _other(
        KindName.BSDA, "Bsda", "BSDA", "t",
        ("INITIAL", "SIGNED_BY_PRODUCER", "SIGNED_BY_WORKER", "SENT", "RECEIVED", "PROCESSED",
         "REFUSED", "AWAITING_CHILD", "CANCELED"),
        {"PROCESSED", "REFUSED", "CANCELED"},
    ),
    KindName.BSDASRI: _other(
        KindName.BSDASRI, "Bsdasri", "DASRI", "kg",
        ("INITIAL", "SIGNED_BY_PRODUCER", "SENT", "RECEIVED", "PROCESSED", "REFUSED",
         "AWAITING_GROUP", "CANCELED"),
        {"PROCESSED", "REFUSED", "CANCELED"},
    ),
    KindName.BSFF: _other(
        KindName.BSFF, "Bsff", "FF", "kg",
        ("INITIAL", "SIGNED_BY_EMITTER", "SENT", "RECEIVED", "ACCEPTED", "REFUSED",
         "PARTIALLY_REFUSED", "INTERMEDIATELY_PROCESSED", "PROCESSED"),
        {"PROCESSED", "REFUSED"},
    ),
    KindName.BSVHU: _other(
        KindName.BSVHU, "Bsvhu", "VHU", "t",
        ("INITIAL", "SIGNED_BY_PRODUCER", "SENT", "RECEIVED", "PROCESSED", "REFUSED"),
        {"PROCESSED", "REFUSED"},
        custom_id=True,
    ),
    KindName.BSPAOH: _other(
        KindName.BSPAOH, "Bspaoh", "PAOH", "kg",
        ("DRAFT", "INITIAL", "SIGNED_BY_PRODUCER", "SENT", "RECEIVED", "PROCESSED", "REFUSED",
         "PARTIALLY_REFUSED", "CANCELED"),
        {"PROCESSED", "REFUSED", "CANCELED"},
        draft_status="DRAFT",
    ),
}


WASTE_CODE_PATHS: dict[KindName, str] = {
    KindName.BSDD: "wasteDetails.code",
    KindName.BSDA: "waste.code",
    KindName.BSDASRI: "waste.code",
    KindName.BSFF: "waste.code",
    KindName.BSVHU: "wasteCode",
    KindName.BSPAOH: "waste.code",
}
"""Where each kind's input carries its waste code."""


def get_kind(name: str) -> BsdKind:
    """The kind called ``name`` (case-insensitive); the error lists the valid names."""
    try:
        return KINDS[KindName(name.upper())]
    except ValueError:
        valid = ", ".join(k.value for k in KindName)
        raise ValueError(f"unknown BSD kind {name!r} (valid: {valid})") from None
