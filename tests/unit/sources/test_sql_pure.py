"""Pure pieces of the SQL source: keys, checkpoint values, the cursor safe-point rule, SQL text."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from connector.sources.keys import join_key, split_key
from connector.sources.sql_cursor import CursorState
from connector.sources.sql_query import Relation, cursor_page, key_cursor_page, rows_with_keys
from connector.sources.sql_values import cursor_distance, decode_value, encode_value, row_hash, to_plain


@pytest.mark.parametrize("parts", [["1"], ["A", "B"], ["a|b", "c\\d"], ["", "x|"], ["\\|", "|\\"]])
def test_keys_round_trip(parts: list[str]) -> None:
    assert split_key(join_key(parts)) == parts


def test_keys_with_separator_do_not_collide() -> None:
    assert join_key(["a|b", "c"]) != join_key(["a", "b|c"])


@pytest.mark.parametrize("value", [None, 3, "x", True, 1.5, Decimal("1.250"), date(2026, 3, 2),
                                   datetime(2026, 3, 2, 8, 0, 0, 123456),
                                   datetime(2026, 3, 2, 8, tzinfo=timezone(timedelta(hours=1))), b"\x00\xff"])
def test_checkpoint_values_keep_their_type(value: Any) -> None:
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert back == value
    assert type(back) is type(value)


def test_plain_values() -> None:
    assert to_plain(memoryview(b"ab")) == b"ab"
    assert to_plain([Decimal("1"), {"a": memoryview(b"x")}]) == [Decimal("1"), {"a": b"x"}]
    assert row_hash({"a": 1}, {}) != row_hash({"a": 1}, {"c": [{"q": 1}]})


def test_safe_point_waits_for_lag_and_a_full_poll() -> None:
    state = CursorState()
    assert state.finish_poll(started=0, ended=1, highest=10, lag=5, full=True) is None
    assert state.safe is None  # nothing seen at least 5 s ago
    assert state.finish_poll(started=5, ended=5.5, highest=12, lag=5, full=True) is None
    assert state.safe is None  # observation (1, 10) is only 4 s older than this poll's start
    state.finish_poll(started=6.5, ended=7, highest=12, lag=5, full=False)
    assert state.safe is None  # a resumed poll did not re-read everything above the safe point
    assert state.finish_poll(started=6.5, ended=7, highest=12, lag=5, full=True) == 0
    assert state.safe == 10
    assert [(v, g) for _, v, g in state.observations] == [(12, 1)]
    assert state.generation == 4


def test_cursor_state_survives_json() -> None:
    state = CursorState(safe=datetime(2026, 1, 1), position=(datetime(2026, 1, 2), [3]), generation=7,
                        epoch="abc", observations=[(1.5, datetime(2026, 1, 3), 6)], rec_at=99.5,
                        rec_pos=["A", 2], rec_seed=True)
    again = CursorState.from_checkpoint(json.loads(json.dumps(state.to_checkpoint())))
    assert again == state


def test_cursor_page_sql_is_quoted_and_bound() -> None:
    rel = Relation.for_table("erp.enlèvements", ["id", "Date Maj", "site"])
    query = cursor_page(rel, "Date Maj", ["site", "id"], 5, (7, ["A", 2]), 100)
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert 'FROM erp."enlèvements"' in sql
    assert 'erp."enlèvements"."Date Maj" > %(Date_Maj_1)s' in sql
    assert 'ORDER BY erp."enlèvements"."Date Maj", erp."enlèvements".site, erp."enlèvements".id' in sql
    assert "LIMIT" in sql


def test_checkpoint_from_before_reconciliations_asks_for_the_key_map_to_be_built() -> None:
    assert CursorState.from_checkpoint({"v": 2, "safe": 5, "obs": [], "gen": 3}).rec_seed is True
    assert CursorState.from_checkpoint({"v": 2, "safe": None, "obs": [], "gen": 0}).rec_seed is False


def test_reconciliation_due() -> None:
    state = CursorState()
    assert state.reconcile_due(now=0, interval=300)  # never ran
    state.rec_at = 100
    assert not state.reconcile_due(now=399, interval=300)
    assert state.reconcile_due(now=400, interval=300)
    assert not state.reconcile_due(now=10_000, interval=0)  # off
    state.rec_pos = [7]
    assert state.reconcile_due(now=101, interval=300)  # interrupted: resumes at once


def test_cursor_distance_for_people() -> None:
    assert cursor_distance(datetime(2026, 1, 1, 8, 0, 20), datetime(2026, 1, 1, 8, 0, 13)) == "7 s"
    assert cursor_distance("2026-01-01 08:00:20", "2026-01-01 08:00:20.500000") == "-0.5 s"
    assert cursor_distance(120, 100) == "20"
    assert cursor_distance(Decimal("2.5"), 1) == "1.5"
    assert cursor_distance("b", "a") is None
    assert cursor_distance(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1)) is None


def test_reconciliation_sql_reads_two_columns_in_key_order_and_rows_by_composite_key() -> None:
    rel = Relation.for_table("enlevements", ["site", "id", "maj", "poids"])
    query = key_cursor_page(rel, "maj", ["site", "id"], 5, ["A", 2], 5000)
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert sql.startswith("SELECT enlevements.site, enlevements.id, enlevements.maj \nFROM enlevements")
    assert "enlevements.maj <= %(maj_1)s" in sql
    assert "ORDER BY enlevements.site, enlevements.id" in sql
    sql = str(rows_with_keys(rel, ["site", "id"], [("A", 1), ("B", 2)]).compile(dialect=postgresql.dialect()))
    assert "enlevements.poids" in sql
    assert sql.count(" AND ") == 2
    assert " OR " in sql
