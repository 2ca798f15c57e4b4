"""Talking to Trackdéchets: the GraphQL client and what keeps it a good API citizen.

The client sends documents built elsewhere (``documents.py``) and knows nothing of business rules.
Around it sit small pure helpers (response classification, request batching) and the process-wide
request budget (pacing), so that the engine can decide what to do with each outcome without
looking at HTTP details.
"""

from __future__ import annotations

from connector.trackdechets.batching import MergedRead, ReadPart, chunk, merge_reads
from connector.trackdechets.classify import Action, classify, transport_error_label
from connector.trackdechets.client import Operation, OperationOutcome, ResponseInfo, TrackdechetsClient
from connector.trackdechets.errors import (
    ClientBug,
    InDoubt,
    NotSent,
    Rejected,
    TrackdechetsError,
    Unauthenticated,
)
from connector.trackdechets.pacing import Pacer, RateHeaders
from connector.trackdechets.retry import RetryPolicy, build_retrying

__all__ = [
    "Action",
    "ClientBug",
    "InDoubt",
    "MergedRead",
    "NotSent",
    "Operation",
    "OperationOutcome",
    "Pacer",
    "RateHeaders",
    "ReadPart",
    "Rejected",
    "ResponseInfo",
    "RetryPolicy",
    "TrackdechetsClient",
    "TrackdechetsError",
    "Unauthenticated",
    "build_retrying",
    "chunk",
    "classify",
    "merge_reads",
    "transport_error_label",
]
