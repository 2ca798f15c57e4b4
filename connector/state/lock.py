"""One writer per state directory: a daemon and an operator's ``sync --once`` must not both push.

The push step already claims each row with a conditional update, so two writers could not send
the same mutation twice; this lock makes the mistake visible instead of merely harmless. It is an
advisory ``flock`` on a file in the state directory, released by the kernel when the process dies
(SIGKILL included), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connector.errors import StateError

__all__ = ["InstanceLockedError", "instance_lock"]

LOCK_NAME = "td-connector.lock"


class InstanceLockedError(StateError):
    """Another td-connector process works on this state directory."""


@contextmanager
def instance_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise InstanceLockedError(
                f"another td-connector process (pid {holder}) is working on {state_dir}: stop it "
                "(systemctl stop td-connector) or wait for it to finish",
                lock=str(path),
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()
