"""The state store: the spine where ingest, push, track and write-back meet."""

from connector.state.models import RecordState
from connector.state.store import StateStore, open_state_store

__all__ = ["RecordState", "StateStore", "open_state_store"]
