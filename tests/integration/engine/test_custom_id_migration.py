"""Migration 0003 fills ``records.custom_id`` of the rows already there: after an upgrade, a new
record reusing an older record's customId is held, not created as a second BSD with it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from connector.engine.ingest import IngestEntry
from connector.engine.uniqueness import hold_custom_id_duplicates
from connector.state import open_state_store
from connector.state.models import Record
from connector.state.store import _MIGRATIONS
from tests.db_urls import dialect_params, temporary_database

NOW = datetime(2026, 3, 2, 8, 0, 0)
ROWS = [  # kind, key, payload
    ("BSDD", "ERP-1", {"customId": "CID-1", "wasteDetails": {"code": "13 02 05*"}}),
    ("BSDD", "ERP-2", {"wasteDetails": {"code": "13 02 05*"}}),  # customId stamped by ingest: the key
    ("BSVHU", "VHU-1", {"quantity": 2}),
    ("BSDA", "DA-1", {"emitter": {"customInfo": "DA-1"}}),  # no customId on this kind
    ("BSDA", "DA-2", {"customId": "CID-DA"}),
    ("BSDD", "ERP-3", None),  # rejected before mapping: no payload
]


@pytest.mark.parametrize("dialect", dialect_params())
def test_the_upgrade_fills_custom_id_of_existing_rows(dialect: str) -> None:
    with temporary_database(dialect) as url:
        store = open_state_store(url, migrate=False)
        try:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            with store.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "0002")
                table = sa.Table("records", sa.MetaData(), autoload_with=connection)
                connection.execute(
                    table.insert(),
                    [
                        {"mapping": "m", "record_key": key, "kind": kind, "state": "synced",
                         "origin": f"row {key}", "payload_hash": f"h-{key}",
                         "payload": json.dumps(payload) if payload is not None else None,
                         "attempts": 0, "writeback_due": False,
                         "created_at": NOW, "updated_at": NOW}
                        for kind, key, payload in ROWS
                    ],
                )
            store.upgrade()
            with store.session() as session:
                found = dict(session.execute(sa.select(Record.record_key, Record.custom_id)).all())
                assert found == {"ERP-1": "CID-1", "ERP-2": "ERP-2", "VHU-1": "VHU-1", "DA-1": None,
                                 "DA-2": "CID-DA", "ERP-3": None}
                new = IngestEntry("ERP-9", None, "row ERP-9", {"customId": "CID-1"}, "h", None, (), None)
                held = hold_custom_id_duplicates(session, "m", {"ERP-9": new}, _Log())
            assert "already used by record ERP-1" in (held["ERP-9"].error or "")
        finally:
            store.close()


class _Log:
    def __getattr__(self, _name: str) -> object:
        return lambda *a, **k: Counter()
