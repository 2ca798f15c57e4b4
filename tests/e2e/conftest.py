"""The daemon as a separate process, from the built wheel, against the emulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from td_emulator.config import EmulatorConfig
from td_emulator.testing import ServedEmulator, serve_in_thread

from .process import use_installed_wheel
from .wheel import InstalledWheel, build_and_install


@pytest.fixture(scope="session", autouse=True)
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    """Build the wheel once per session and install it in a venv of its own (see wheel.py)."""
    installed = build_and_install(tmp_path_factory.mktemp("wheel"))
    use_installed_wheel(installed)
    return installed


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


@pytest.fixture(autouse=True)
def _no_token_in_any_output(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every file an end-to-end test leaves (logs, receipts, state, ERP tables) is free of the token."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is None:
        return
    from connector.domain.demo_companies import DEMO_TOKEN

    # Links are not followed: a link planted in a drop folder is not something the connector wrote.
    leaks = [p for p in tmp.rglob("*")
             if p.is_file() and not p.is_symlink() and DEMO_TOKEN.encode() in p.read_bytes()]
    assert leaks == [], f"the API token was written to {leaks}"
