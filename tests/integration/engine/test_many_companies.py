"""A group's token of hundreds of companies, as a collector or a group holds one.

Records spread over 170 companies of a 230-company token: in-doubt creates of companies far beyond
the first 50 are found (no duplicate), every company with live BSDs is tracked in merged requests
(25 company-pages to a request), a record naming no company of the token is rejected before
anything is sent, and comes back by itself once the token holds one of its companies.
"""

from __future__ import annotations

import csv
import math
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.demo.run import _asset
from connector.domain.demo_companies import DEMO_COMPANIES, DEMO_TOKEN
from connector.engine.companies import NOT_OURS
from connector.runtime import Runtime, build_runtime
from connector.service import run_step
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig, FaultConfig
from td_emulator.seed import GROUP_TOKEN, group_sirets
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import drop, runtime_for

COMPANIES = 230
SIRETS = group_sirets(COMPANIES)
OUTSIDER = DEMO_COMPANIES["outsider"].siret
PRODUCER = "85243162000123"
DESTINATION = "44019372000255"
MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


@pytest.fixture
def group() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True, group_companies=COMPANIES)) as served:
        yield served


def rows(keys_and_companies: list[tuple[str, str, str]]) -> str:
    """The demo export with one row per (key, emitter SIRET, destination SIRET)."""
    template = _asset("enlevements_mars.csv").decode("utf-8").splitlines()
    header, row = template[0], template[2]
    lines = [header]
    for key, emitter, destination in keys_and_companies:
        lines.append(
            row.replace("BE-2026-0413", key).replace(PRODUCER, emitter).replace(DESTINATION, destination)
        )
    return "\n".join(lines) + "\n"


def step(runtime: Runtime, name: str) -> dict[str, int]:
    return run_step(runtime.pipeline, name, threading.Event())


def requests_of(served: ServedEmulator) -> list[list[str]]:
    """Root fields of every HTTP request in the journal (one list per request)."""
    return [[f for op in e["operations"] for f in op["fields"]] for e in served.emulator.journal]


def receipts(tmp_path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for path in (tmp_path / "inbox" / "receipts").glob("*.receipt.csv"):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            out.update({r["key"]: r for r in csv.DictReader(fh, delimiter=";")})
    return out


def test_the_company_list_is_read_to_its_last_page_and_refreshed(tmp_path: Path) -> None:
    config = EmulatorConfig(admin_enabled=True, group_companies=1_200)
    with serve_in_thread(config) as served:
        runtime = runtime_for(tmp_path, served.url, token=GROUP_TOKEN)
        now = [1_000.0]
        runtime.pipeline.companies.clock = lambda: now[0]
        try:
            # A record of the last company of the list: known after reading all three pages.
            drop(tmp_path, "a.csv", rows([("LAST-1", group_sirets(1_200)[-1], DESTINATION)]))
            step(runtime, "ingest")
            served.emulator.journal.clear()
            counts = step(runtime, "push")
            assert counts.get("created") == 1
            assert not counts.get("rejected")
            pages = [r for r in requests_of(served) if r == ["myCompanies"]]
            assert len(pages) == 3  # 500 + 500 + 200
            assert len(runtime.pipeline.my_sirets or []) == 1_200
            # Fresh: not read again; once companies_refresh_seconds old: read again.
            served.emulator.journal.clear()
            step(runtime, "track")
            assert ["myCompanies"] not in requests_of(served)
            now[0] += runtime.pipeline.options.companies_refresh_seconds
            step(runtime, "track")
            assert requests_of(served).count(["myCompanies"]) == 3
        finally:
            runtime.close()


def test_the_emulator_pages_my_companies_as_the_platform_does(group: ServedEmulator) -> None:
    def ask(first: int, after: str | None = None) -> dict:
        body = {"query": "query($first: Int, $after: ID) { myCompanies(first: $first, after: $after) "
                "{ totalCount pageInfo { endCursor hasNextPage } edges { node { siret } } } }",
                "variables": {"first": first, "after": after}}
        answer = httpx.post(group.url, json=body, headers={"Authorization": f"Bearer {GROUP_TOKEN}"})
        return answer.json()

    refused = ask(501)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    first = ask(200)["data"]["myCompanies"]
    assert first["totalCount"] == COMPANIES
    assert first["pageInfo"]["hasNextPage"]
    rest = ask(200, first["pageInfo"]["endCursor"])["data"]["myCompanies"]
    assert rest["totalCount"] == COMPANIES
    assert not rest["pageInfo"]["hasNextPage"]
    listed = [e["node"]["siret"] for page in (first, rest) for e in page["edges"]]
    assert listed == SIRETS  # ordered by name, every company once


@pytest.mark.slow
def test_a_group_token_reconciles_tracks_and_rejects_per_company(
    tmp_path: Path, group: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    emu = group.emulator
    try:
        # 1. Five creates of companies far beyond the first 50, committed, their answers lost.
        far = [(f"FAR-{i}", SIRETS[200 + i], DESTINATION) for i in range(5)]
        drop(tmp_path, "far.csv", rows(far))
        step(runtime, "ingest")
        emu.faults = FaultConfig(drop_after_commit_probability=1.0)
        assert step(runtime, "push").get("in_doubt") == 5
        emu.faults = FaultConfig()

        # 2. 160 emitters of the token (the first with 105 BSDs: a walk of two pages), five records
        # whose emitter is another's but whose destination is the token's, and one record naming
        # no company of the token.
        spread = [(f"ORD-{i:04d}", SIRETS[i], DESTINATION) for i in range(160)]
        spread += [(f"ORD-BIG-{i:03d}", SIRETS[0], DESTINATION) for i in range(104)]
        spread += [(f"DEST-{i}", OUTSIDER, SIRETS[210 + i]) for i in range(5)]
        spread += [("FOREIGN-1", OUTSIDER, DESTINATION)]
        drop(tmp_path, "spread.csv", rows(spread))
        step(runtime, "ingest")
        emu.journal.clear()
        counts = step(runtime, "push")
        assert counts.get("created_adopted") == 5  # found under their own companies
        assert counts.get("rejected") == 1
        sent = Counter(f for r in requests_of(group) for f in r)
        assert sent["createForm"] == 160 + 104 + 5  # none for the in-doubt ones, none for FOREIGN-1

        per_custom_id = Counter(f.get("customId") for f in emu.store.newest_first("BSDD"))
        assert all(per_custom_id[key] == 1 for key, _, _ in far + spread[:-1])  # no duplicate
        assert per_custom_id["FOREIGN-1"] == 0
        records = {r.record_key: r for r in runtime.store.records()}
        foreign = records["FOREIGN-1"]
        assert foreign.state == "rejected"
        assert foreign.bsd_id is None
        assert NOT_OURS in (foreign.last_error or "")
        assert OUTSIDER in (foreign.last_error or "")
        assert "spread.csv" in (foreign.last_error or "")
        live = [r for r in records.values() if r.record_key != "FOREIGN-1"]
        assert {r.state for r in live} == {"synced"}
        assert len(live) == 5 + 160 + 104 + 5

        # 3. The other parties sign every BSD: one tracking cycle brings every status back.
        with httpx.Client(base_url=group.url) as admin:
            for record in live:
                answer = admin.post(f"_emulator/bsds/{record.bsd_id}/sign-emission")
                assert answer.status_code == 200, answer.text
        emu.journal.clear()
        counts = step(runtime, "track")
        walked = 5 + 160 + 5  # companies with live BSDs, the 60 others of the token are not walked
        reads = walked + 1  # the first company's second page
        assert counts["walks"] == walked
        assert len(emu.journal) == math.ceil(reads / 25)  # 25 company-pages to a request
        assert counts["status_changes"] == len(live)
        step(runtime, "writeback")
        written = receipts(tmp_path)
        assert {written[r.record_key]["remote_status"] for r in live} == {"SIGNED_BY_PRODUCER"}
        assert NOT_OURS in written["FOREIGN-1"]["error"]
    finally:
        runtime.close()


def test_a_rejected_foreign_record_is_sent_once_the_token_holds_one_of_its_companies(
    tmp_path: Path, group: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    now = [1_000.0]
    runtime.pipeline.companies.clock = lambda: now[0]
    try:
        records = [("OURS-1", SIRETS[7], DESTINATION), ("LATER-1", OUTSIDER, DESTINATION)]
        drop(tmp_path, "a.csv", rows(records))
        step(runtime, "ingest")
        assert step(runtime, "push").get("rejected") == 1
        assert {r.record_key: r.state for r in runtime.store.records()}["LATER-1"] == "rejected"
        # The outsider company is given to the group's account on the platform.
        group.emulator.registry.user_for(GROUP_TOKEN).roles[OUTSIDER] = "ADMIN"  # type: ignore[union-attr]
        now[0] += runtime.pipeline.options.companies_refresh_seconds
        step(runtime, "track")  # the scheduled read finds it and requeues the record
        counts = step(runtime, "push")
        assert counts.get("created") == 1
        later = {r.record_key: r for r in runtime.store.records()}["LATER-1"]
        assert later.state == "synced"
        assert later.bsd_id
        assert later.last_error is None
    finally:
        runtime.close()


def test_a_record_naming_a_company_just_given_to_the_token_has_the_list_read_again(
    tmp_path: Path, group: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    now = [1_000.0]
    runtime.pipeline.companies.clock = lambda: now[0]
    options = runtime.pipeline.options
    try:
        drop(tmp_path, "a.csv", rows([("EARLY-1", OUTSIDER, DESTINATION)]))
        step(runtime, "ingest")
        assert step(runtime, "push").get("rejected") == 1
        group.emulator.registry.user_for(GROUP_TOKEN).roles[OUTSIDER] = "ADMIN"  # type: ignore[union-attr]
        # A new record of that company, well before the hourly read: read again at once...
        now[0] += options.companies_recheck_seconds
        drop(tmp_path, "b.csv", rows([("NEW-1", OUTSIDER, DESTINATION)]))
        step(runtime, "ingest")
        group.emulator.journal.clear()
        counts = step(runtime, "push")
        assert ["myCompanies"] in requests_of(group)
        # ... which sends it, and the earlier record rejected for that company with it.
        assert counts.get("created") == 2
        assert not counts.get("rejected")
        states = {r.record_key: r.state for r in runtime.store.records()}
        assert states == {"EARLY-1": "synced", "NEW-1": "synced"}
    finally:
        runtime.close()


def test_a_company_leaving_the_token_fails_only_its_own_walk(tmp_path: Path, group: ServedEmulator) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    try:
        drop(tmp_path, "a.csv", rows([(f"K-{i}", SIRETS[i], DESTINATION) for i in range(30)]))
        step(runtime, "ingest")
        step(runtime, "push")
        roles = group.emulator.registry.user_for(GROUP_TOKEN).roles  # type: ignore[union-attr]
        del roles[SIRETS[3]]  # on the platform, the account leaves one establishment
        with httpx.Client(base_url=group.url) as admin:
            for record in runtime.store.records():
                assert admin.post(f"_emulator/bsds/{record.bsd_id}/sign-emission").status_code == 200
        counts = step(runtime, "track")  # not a failed step: the 29 other walks are complete
        assert counts["walks"] == 29
        assert counts["walks_failed"] == 1
        assert counts["status_changes"] == 29
        with runtime.store.session() as session:  # the failed walk's cursor did not move
            cursors = {s: runtime.store.get_cursor(session, "BSDD", s) for s in SIRETS[:30]}
        assert cursors[SIRETS[3]] is None
        assert all(cursors[s] is not None for s in SIRETS[:30] if s != SIRETS[3])
        counts = step(runtime, "track")  # the list read again: that company is not walked any more
        assert counts["walks"] == 29
        assert not counts.get("walks_failed")
        assert counts["untracked"] == 1
    finally:
        runtime.close()


def test_an_in_doubt_create_whose_company_left_the_token_waits_and_is_never_sent_twice(
    tmp_path: Path, group: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    runtime.pipeline.options.initial_backoff_seconds = 0  # a refused look-up is tried again at once
    now = [1_000.0]
    runtime.pipeline.companies.clock = lambda: now[0]
    roles = group.emulator.registry.user_for(GROUP_TOKEN).roles  # type: ignore[union-attr]
    siret = SIRETS[120]
    try:
        drop(tmp_path, "a.csv", rows([("GONE-1", siret, DESTINATION)]))
        step(runtime, "ingest")
        group.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        assert step(runtime, "push").get("in_doubt") == 1
        group.emulator.faults = FaultConfig()
        del roles[siret]  # the account leaves that establishment before the look-up
        # Its list said otherwise: the look-up is refused, the list is stale; read again (at once,
        # with no backoff here): nothing to look it up with.
        counts = step(runtime, "push")
        assert counts.get("in_doubt_lookup_failed") == 1
        assert counts.get("rejected") == 1
        record = next(iter(runtime.store.records()))
        assert record.state == "rejected"
        assert record.intent_op == "create"  # still in doubt: never sent again
        assert "cannot be looked up" in (record.last_error or "")
        roles[siret] = "ADMIN"  # back on the platform: found at the hourly read, then looked up
        now[0] += runtime.pipeline.options.companies_refresh_seconds
        step(runtime, "track")
        counts = step(runtime, "push")
        assert counts.get("created_adopted") == 1
        bsds = [f for f in group.emulator.store.newest_first("BSDD") if f.get("customId") == "GONE-1"]
        assert len(bsds) == 1
        assert next(iter(runtime.store.records())).bsd_id == bsds[0]["id"]
    finally:
        runtime.close()


def test_walks_of_several_kinds_share_one_request(tmp_path: Path) -> None:
    """A BSDD company walk and the BSDA walk travel in the same request."""
    bsda = (MAPPINGS / "bsda_csv.toml").read_text("utf-8").replace('folder = "data"', 'folder = "inbox_bsda"')
    (tmp_path / "bsda.toml").write_text(bsda.replace('"bsda_*.csv"', '"*.csv"\nstable_seconds = 0'), "utf-8")
    (tmp_path / "inbox_bsda").mkdir()
    sites = (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8")
    (tmp_path / "inbox_bsda" / "a.csv").write_text(sites, "utf-8")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        (tmp_path / "inbox").mkdir()
        (tmp_path / "mapping.toml").write_text(_asset("bsdd_csv.toml").decode("utf-8"), "utf-8")
        (tmp_path / "config.toml").write_text(
            f'[trackdechets]\nurl = "{served.url}"\n[state]\ndir = "var"\n'
            '[mappings]\npaths = ["mapping.toml", "bsda.toml"]\n', "utf-8")
        settings = load_settings(tmp_path / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN})
        runtime = build_runtime(settings, tmp_path)
        try:
            drop(tmp_path, "a.csv", rows([("MIX-1", PRODUCER, DESTINATION)]))
            step(runtime, "ingest")
            step(runtime, "push")
            assert {r.kind for r in runtime.store.records() if r.bsd_id} == {"BSDD", "BSDA"}
            served.emulator.journal.clear()
            counts = step(runtime, "track")
            assert counts["walks"] == 2
            assert requests_of(served) == [["forms", "bsdas"]]  # one request, one document
        finally:
            runtime.close()
