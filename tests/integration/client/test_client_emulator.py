"""The client against the project's emulator over real loopback HTTP."""

from __future__ import annotations

import pytest

from connector.domain.demo_companies import DEMO_TOKEN
from connector.trackdechets import (
    InDoubt,
    Operation,
    Pacer,
    RetryPolicy,
    TrackdechetsClient,
    Unauthenticated,
)
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread

ME = "query Me { me { id } }"


@pytest.fixture
def served():
    with serve_in_thread(EmulatorConfig(admin_enabled=True, random_seed=7, rate_window_seconds=1.0)) as s:
        yield s


def client_for(served, token: str = DEMO_TOKEN) -> TrackdechetsClient:
    return TrackdechetsClient(served.url, token, pacer=Pacer(), timeout=5,
                              retry=RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05))


def test_a_read_and_the_rate_headers(served):
    with client_for(served) as client:
        assert client.query(ME)["me"]["id"]
        assert client.pacer.remaining() == 999


def test_forced_429_waits_for_the_reset_then_succeeds(served):
    served.emulator.faults.force_429_count = 1
    with client_for(served) as client:
        assert client.query(ME)["me"]["id"]
        assert client.pacer.throttled == 1


def test_5xx_on_reads_are_retried(served):
    served.emulator.faults.error_probability = 0.3
    with client_for(served) as client:
        for _ in range(5):
            assert client.query(ME)["me"]["id"]


def test_5xx_on_a_mutation_is_in_doubt_and_not_resent(served):
    served.emulator.faults.error_probability = 1.0
    before = len(served.emulator.journal)
    with client_for(served) as client:
        delete = Operation("mutation D($id: ID!) { deleteForm(id: $id) { id } }", {"id": "nope"})
        (outcome,) = client.execute_mutations([delete])
    assert isinstance(outcome.error, InDoubt)
    assert len(served.emulator.journal) - before == 1


def test_an_unknown_token_is_unauthenticated(served):
    with client_for(served, token="not-a-token") as client, pytest.raises(Unauthenticated):
        client.query(ME)


