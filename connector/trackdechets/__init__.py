"""Talking to Trackdéchets: the GraphQL client and what keeps it a good API citizen.

The client sends documents built elsewhere (``documents.py``) and knows nothing of business rules.
Around it sit small pure helpers (response classification, request batching) and the process-wide
request budget (pacing), so that the engine can decide what to do with each outcome without
looking at HTTP details.
"""

from __future__ import annotations

from connector.trackdechets.classify import Action, classify, transport_error_label
from connector.trackdechets.errors import (
    ClientBug,
    InDoubt,
    NotSent,
    Rejected,
    TrackdechetsError,
    Unauthenticated,
)

__all__ = [
    "Action",
    "ClientBug",
    "InDoubt",
    "NotSent",
    "Rejected",
    "TrackdechetsError",
    "Unauthenticated",
    "classify",
    "transport_error_label",
]
