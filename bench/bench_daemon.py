"""The daemon as systemd runs it: time from start to ``/healthz`` answering, to the first records
sealed, and from SIGTERM to a clean exit, over several runs of ``td-connector run``.

The example mapping ``mappings/bsdd_csv.toml`` and its sample file feed a local emulator; the
daemon is a real process with the metrics endpoint on. Run from the repo root:

    .venv/bin/python bench/bench_daemon.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.domain.demo_companies import DEMO_TOKEN  # noqa: E402
from td_emulator.config import EmulatorConfig  # noqa: E402
from td_emulator.testing import ServedEmulator, serve_in_thread  # noqa: E402

CONFIG = """
[trackdechets]
url = "{url}"
[state]
dir = "var"
[mappings]
paths = ["bsdd_csv.toml"]
[schedule]
ingest_seconds = 1
push_seconds = 1
[metrics]
enabled = true
port = {port}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthz_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:  # 503 while degraded is an answer too
        return True
    except OSError:
        return False


def wait(predicate: Callable[[], bool], process: subprocess.Popen[bytes], log: Path,
         timeout: float = 60) -> float:
    started = time.monotonic()
    while not predicate():
        if process.poll() is not None:
            raise SystemExit(f"daemon exited {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    return time.monotonic() - started


def one_run(workdir: Path, served: ServedEmulator, expected: int) -> tuple[float, float, float]:
    shutil.rmtree(workdir / "var", ignore_errors=True)
    shutil.rmtree(workdir / "data", ignore_errors=True)
    shutil.copytree(ROOT / "mappings" / "data", workdir / "data")
    served.emulator.reset()
    port = free_port()
    (workdir / "config.toml").write_text(CONFIG.format(url=served.url, port=port), "utf-8")
    log = workdir / "daemon.log"
    env = dict(os.environ, TDC_TRACKDECHETS__TOKEN=DEMO_TOKEN)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "connector", "run", "--config", "config.toml"],
                               cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        to_health = wait(lambda: healthz_answers(port), process, log)

        def sealed() -> bool:
            forms = served.emulator.store.newest_first("BSDD")
            return sum(1 for f in forms if f.get("status") == "SEALED") >= expected

        wait(sealed, process, log)
        to_sealed = time.monotonic() - started
        time.sleep(1)
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        to_exit = time.monotonic() - stopping
        if code != 0:
            raise SystemExit(f"exit status {code}:\n{log.read_text()[-3000:]}")
        return to_health, to_sealed, to_exit
    finally:
        if process.poll() is None:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = (ROOT / "mappings" / "data" / "bsdd_enlevements.csv").read_text("utf-8").strip().splitlines()
    expected = len(rows) - 1
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        workdir = Path(tmp)
        # The sample file is copied fresh at each run: a 2 s quiet period (the default is 60 s)
        # keeps this a measure of the daemon, not of the wait for a file nobody writes any more.
        mapping = (ROOT / "mappings" / "bsdd_csv.toml").read_text("utf-8")
        (workdir / "bsdd_csv.toml").write_text(
            mapping.replace('type = "csv"', 'type = "csv"\nstable_seconds = 2', 1), "utf-8")
        runs = [one_run(workdir, served, expected) for _ in range(args.runs)]
    print(f"# bench_daemon {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.runs} runs, "
          f"{expected} sample records")
    for label, values in zip(("start -> /healthz answers", f"start -> {expected} BSDDs sealed",
                              "SIGTERM -> exit 0"), zip(*runs, strict=True), strict=True):
        print(f"{label}: median {statistics.median(values):.2f} s, "
              f"max {max(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
