"""The official waste-code nomenclature and the operation codes each kind accepts, as data.

Both lists are the project's own copies (``connector/domain/data/*.json``), regenerated from the
reference by ``scripts/refresh_reference_data.py`` and pinned by a test. They are read once, on
first use, from the installed package; every function here is then a pure lookup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from connector.domain.kinds import KindName

__all__ = [
    "Nomenclature",
    "is_dangerous",
    "nomenclature",
    "operation_code_known",
    "operation_codes",
    "waste_code_kinds",
    "waste_code_known",
    "waste_code_problem",
]

Stage = Literal["planned", "done"]


@dataclass(frozen=True)
class Nomenclature:
    waste_codes: dict[str, frozenset[KindName]]
    """Every leaf code in its official spelling (``15 01 10*``) → the kinds accepting it."""
    dangerous: frozenset[str]
    operations: dict[KindName, dict[str, frozenset[str]]]
    """Kind → ``planned`` / ``done`` → codes in the kind's spelling (``D 10``, ``D10`` for BSFF)."""


def _read(name: str) -> dict:  # type: ignore[type-arg]
    text = resources.files("connector.domain").joinpath("data", name).read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def nomenclature() -> Nomenclature:
    wastes = _read("waste_codes.json")["codes"]
    operations = _read("operation_codes.json")["kinds"]
    return Nomenclature(
        waste_codes={item["code"]: frozenset(KindName(k) for k in item["accepted_on"]) for item in wastes},
        dangerous=frozenset(item["code"] for item in wastes if item["dangerous"]),
        operations={KindName(kind): {stage: frozenset(codes) for stage, codes in stages.items()}
                    for kind, stages in operations.items()},
    )


def waste_code_kinds(code: str) -> frozenset[KindName]:
    """The kinds accepting ``code`` (official spelling); empty when the code does not exist."""
    return nomenclature().waste_codes.get(code, frozenset())


def waste_code_known(code: str, kind: KindName | None = None) -> bool:
    """Whether ``code`` exists in the nomenclature (and, given a kind, is accepted on it)."""
    kinds = waste_code_kinds(code)
    return bool(kinds) and (kind is None or kind in kinds)


def is_dangerous(code: str) -> bool:
    """Dangerous per the nomenclature; an unknown code is judged by its star."""
    if code in nomenclature().waste_codes:
        return code in nomenclature().dangerous
    return code.endswith("*")


def operation_codes(kind: KindName, stage: Stage | None = None) -> frozenset[str]:
    """Operation codes ``kind`` accepts as planned or done operation (both when ``stage`` is None)."""
    stages = nomenclature().operations[kind]
    if stage is not None:
        return stages[stage]
    return stages["planned"] | stages["done"]


def operation_code_known(code: str) -> bool:
    """Whether ``code`` (any spelling: ``D 9 F``, ``D9F``) is an operation code of any kind."""
    return code.replace(" ", "") in _compact_operations()


@cache
def _compact_operations() -> frozenset[str]:
    return frozenset(c.replace(" ", "") for stages in nomenclature().operations.values()
                     for codes in stages.values() for c in codes)


def waste_code_problem(code: str, kind: KindName | None = None, *,
                       as_written: str | None = None) -> str | None:
    """Why ``code`` (already written ``NN NN NN`` or ``NN NN NN*``) cannot be sent, or None.

    A code sent without the star its official spelling has (or with one it does not have) is
    named with its exact official spelling, so the fix is obvious. ``as_written`` is the value
    shown in the message (the source's spelling, ``150110``), ``code`` by default.
    """
    kinds = waste_code_kinds(code)
    shown = code if as_written is None else as_written
    if kinds:
        if kind is None or kind in kinds:
            return None
        return f'"{shown}" is not accepted on a {kind}{_accepted_list(kind)}'
    twin = code[:-1] if code.endswith("*") else f"{code}*"
    if twin in nomenclature().waste_codes:
        what = ("is dangerous and is written with its star" if twin.endswith("*")
                else "is not dangerous and is written without a star")
        hint = f'the official code "{twin}" {what}'
        if kind is not None and kind not in waste_code_kinds(twin):
            hint += f", but it is not accepted on a {kind} either{_accepted_list(kind)}"
        return f'"{shown}" is not in the official waste-code list: {hint}'
    return f'"{shown}" is not in the official waste-code list'


def _accepted_list(kind: KindName) -> str:
    accepted = sorted(code for code, kinds in nomenclature().waste_codes.items() if kind in kinds)
    if len(accepted) <= 10:
        return f" (accepted: {', '.join(accepted)})"
    return ""
