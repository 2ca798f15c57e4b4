"""The daemon as a separate process against the emulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.emulator.config import EmulatorConfig
from connector.emulator.testing import ServedEmulator, serve_in_thread


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served
