"""HTTP requests per tracking cycle for a group's token, against the emulator over loopback HTTP.

10,000 tracked BSDDs spread over 200 companies of one token (nine in ten emitted by the company,
one in ten naming it as destination only, so followed through its destination), all sealed
and last changed two hours ago. A first cycle catches up; then the other parties move 100 of them
and the measured cycle brings those statuses back; an idle cycle follows.

Goal: requests per cycle ≤ ceil(active company-kinds / 25) + extra pages (25 company-pages travel
in one request: five aliased root fields per document, five documents per JSON array), well under
10 % of the platform's budget (1,000 requests per minute) at the default track interval.

The BSDs and the state-store rows are written directly (the benchmark measures tracking, not
creation); everything the track step does goes through HTTP.

    .venv/bin/python bench/bench_track.py --bsds 10000 --companies 200 --changed 100
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from connector.domain.demo_companies import DEMO_COMPANIES
from connector.engine.track import READS_PER_REQUEST, track_targets
from connector.runtime import Runtime, build_runtime
from connector.service import run_step
from connector.settings import ScheduleSettings, load_settings
from connector.state.models import Record, RecordState
from td_emulator.config import EmulatorConfig
from td_emulator.seed import GROUP_TOKEN, group_sirets
from td_emulator.store import new_cuid
from td_emulator.testing import ServedEmulator, serve_in_thread

RATE_BUDGET_PER_MINUTE = 1000
OUTSIDER = DEMO_COMPANIES["outsider"].siret
DESTINATION = DEMO_COMPANIES["destination"].siret


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed(served: ServedEmulator, runtime: Runtime, bsds: int, companies: int) -> None:
    """``bsds`` sealed BSDDs on the emulator and their synced records in the state store."""
    sirets = group_sirets(companies)
    then = datetime.now(UTC) - timedelta(hours=2)
    mapping = runtime.pipeline.bindings[0].mapping.name
    rows = []
    for index in range(bsds):
        company = sirets[index % companies]
        emitter, destination = (OUTSIDER, company) if index % 10 == 9 else (company, DESTINATION)
        key = f"TRK-{index:06d}"
        form: dict[str, Any] = {
            "id": new_cuid(), "readableId": f"BSD-20261201-{index:09d}", "customId": key,
            "status": "SEALED", "createdAt": _iso(then), "updatedAt": _iso(then),
            "isImportedFromPaper": False, "_draftOwners": [],
            "emitter": {"type": "PRODUCER", "company": {"siret": emitter, "name": "Emetteur"}},
            "recipient": {"company": {"siret": destination, "name": "Destination"}},
            "wasteDetails": {"code": "16 01 07*", "quantity": 0.085},
        }
        served.emulator.store.insert("BSDD", form)
        payload = {key_: form[key_] for key_ in ("customId", "emitter", "recipient", "wasteDetails")}
        text = json.dumps(payload, sort_keys=True)
        rows.append(Record(
            mapping=mapping, record_key=key, kind="BSDD", unit="bench.csv", origin=f"bench.csv, {key}",
            emitter_siret=emitter, payload=text, payload_hash=hashlib.sha256(text.encode()).hexdigest(),
            state=RecordState.SYNCED, bsd_id=form["id"], readable_id=form["readableId"],
            remote_status="SEALED", remote_is_draft=False, remote_updated_at=form["updatedAt"],
            attempts=0, writeback_due=False, created_at=then, updated_at=then,
        ))
    with runtime.store.session() as session:
        session.add_all(rows)


def cycle(served: ServedEmulator, runtime: Runtime) -> dict[str, Any]:
    served.emulator.journal.clear()
    started = time.monotonic()
    counts = run_step(runtime.pipeline, "track", threading.Event())
    seconds = time.monotonic() - started
    journal = list(served.emulator.journal)
    fields = [f for entry in journal for op in entry["operations"] for f in op["fields"]]
    return {
        "http_requests": len(journal),
        "company_pages_read": fields.count("forms"),
        "company_list_reads": fields.count("myCompanies"),
        "walks": counts.get("walks", 0),
        "bsds_seen": counts.get("seen", 0),
        "status_changes": counts.get("status_changes", 0),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bsds", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--changed", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    config = EmulatorConfig(admin_enabled=True, group_companies=args.companies, rate_limit=100_000)
    with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp, serve_in_thread(config) as served:
        folder = Path(tmp)
        demo = resources.files("connector.demo")
        (folder / "inbox").mkdir()
        (folder / "mapping.toml").write_text(demo.joinpath("bsdd_csv.toml").read_text("utf-8"), "utf-8")
        (folder / "config.toml").write_text(
            '[mappings]\npaths = ["mapping.toml"]\n[state]\ndir = "var"\n'
            f'[trackdechets]\nurl = "{served.url}"\nrate_limit_per_minute = 100000\n',
            "utf-8",
        )
        settings = load_settings(folder / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": GROUP_TOKEN})
        runtime = build_runtime(settings, folder)
        seed(served, runtime, args.bsds, args.companies)
        catch_up = cycle(served, runtime)
        # The other parties sign some BSDs, spread over the companies.
        forms = list(served.emulator.store.newest_first("BSDD"))
        step = max(1, len(forms) // args.changed)
        with served.emulator.store.lock:
            for form in forms[::step][: args.changed]:
                form["status"] = "SIGNED_BY_PRODUCER"
                served.emulator.touch(form)
        active = len(track_targets(runtime.pipeline))
        measured = cycle(served, runtime)
        idle = cycle(served, runtime)
        runtime.close()
    interval = ScheduleSettings().track_seconds
    extra_pages = measured["company_pages_read"] - measured["walks"]
    goal = math.ceil(active / READS_PER_REQUEST) + extra_pages
    per_minute = measured["http_requests"] * 60 / interval
    print(json.dumps({
        "bsds": args.bsds,
        "companies": args.companies,
        "changed": args.changed,
        "active_company_kinds": active,
        "goal_requests_per_cycle": goal,
        "catch_up_cycle": catch_up,
        "cycle_after_changes": measured,
        "idle_cycle": idle,
        "track_interval_seconds": interval,
        "share_of_rate_budget": f"{100 * per_minute / RATE_BUDGET_PER_MINUTE:.2f} %",
    }, indent=2))


if __name__ == "__main__":
    main()
