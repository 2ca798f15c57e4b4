"""Fixtures: a served emulator per test and an authenticated client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from td_emulator.config import EmulatorConfig, WebhookConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.reference import EMULATOR_WASTE_CODES

from .helpers import Api


@pytest.fixture
def served() -> Iterator[ServedEmulator]:
    config = EmulatorConfig(admin_enabled=True, waste_codes_path=EMULATOR_WASTE_CODES,
                            webhooks=WebhookConfig(backoff_seconds=0.01, timeout_seconds=1), random_seed=7)
    with serve_in_thread(config) as served:
        yield served


@pytest.fixture
def api(served: ServedEmulator) -> Iterator[Api]:
    client = Api(served)
    yield client
    client.http.close()
