"""createForm mutations per second against the emulator, over loopback HTTP.

The server runs in its own process pinned to one core (``taskset -c 0`` when available); the
client runs on the other core with several keep-alive connections, so the figure measures the
emulator, not the client. Usage::

    .venv/bin/python bench/bench_emulator.py --requests 2000 --concurrency 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx

from connector.domain.demo_companies import DEMO_COMPANIES, DEMO_TOKEN

QUERY = """mutation C($i: CreateFormInput!) { createForm(createFormInput: $i) { id readableId status } }"""


def _company(key: str) -> dict[str, str]:
    d = DEMO_COMPANIES[key]
    return {"siret": d.siret, "name": d.name, "address": d.address, "contact": d.contact, "phone": d.phone,
            "mail": d.mail}


def _input(n: int) -> dict[str, object]:
    return {"customId": f"BENCH-{n}", "emitter": {"type": "PRODUCER", "company": _company("producer")},
            "recipient": {"processingOperation": "D 10", "cap": "CAP", "company": _company("destination")},
            "transporter": {"company": _company("transporter")},
            "wasteDetails": {"code": "06 05 02*", "name": "Boues", "isSubjectToADR": False,
                             "packagingInfos": [{"type": "CITERNE", "quantity": 1}], "quantity": 1.0,
                             "quantityType": "ESTIMATED", "consistences": ["LIQUID"], "pop": False}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    port = _free_port()
    command = [sys.executable, "-m", "td_emulator", "--port", str(port), "--rate-limit", "1000000",
               "--no-webhooks"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("emulator did not start") from None
                time.sleep(0.05)
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        with httpx.Client(headers=headers) as warm:
            for n in range(50):
                warm.post(url, json={"query": QUERY, "variables": {"i": _input(n)}}).raise_for_status()
        per_worker = args.requests // args.concurrency
        failures: list[str] = []

        def worker(offset: int) -> None:
            with httpx.Client(headers=headers, timeout=30) as client:
                for n in range(per_worker):
                    payload = {"query": QUERY, "variables": {"i": _input(offset + n)}}
                    body = client.post(url, json=payload).json()
                    if "errors" in body:
                        failures.append(str(body["errors"]))

        threads = [threading.Thread(target=worker, args=(i * per_worker,)) for i in range(args.concurrency)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        total = per_worker * args.concurrency
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {total} createForm in {elapsed:.2f} s = "
              f"{total / elapsed:.0f} mutations/s (server pinned: {command[0] == 'taskset'}, "
              f"concurrency {args.concurrency}, failures {len(failures)})")
        if failures:
            print(failures[0])
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
