"""/metrics and /healthz over a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.health import HealthCheck, StepStatus
from connector.metrics import RECONCILIATION, ConnectorMetrics, MetricsServer, build_metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def status(clock: Clock) -> StepStatus:
    status = StepStatus(clock=clock)
    status.register("push", 5)
    status.register("track", 60)
    return status


@pytest.fixture
def server(status: StepStatus) -> Iterator[tuple[MetricsServer, ConnectorMetrics]]:
    counts = {"pending": 3, "in_flight": 1, "synced": 5, "done": 2, "rejected": 1, "conflict": 0}
    metrics = ConnectorMetrics(records_by_state=lambda: counts, rate_budget=lambda: 850, status=status)
    with MetricsServer("127.0.0.1", 0, metrics.registry, HealthCheck(status, 3.0)) as srv:
        yield srv, metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_served_and_reconcile(server: tuple[MetricsServer, ConnectorMetrics], status: StepStatus,
                                      clock: Clock) -> None:
    srv, metrics = server
    status.started("push")
    clock.now += 2
    status.succeeded("push", 2.0)
    status.failed("track", 0.5, "RuntimeError: down")
    metrics.observe_request("ok")
    metrics.observe_request("ok")
    metrics.observe_request("rate_limited")
    metrics.observe_rate_limited()
    metrics.observe_retry()

    response = httpx.get(f"{srv.url}/metrics")
    assert response.status_code == 200
    got = samples(response.text)
    assert got[("tdc_requests_total", (("outcome", "ok"),))] == 2
    assert got[("tdc_requests_total", (("outcome", "rate_limited"),))] == 1
    assert got[("tdc_rate_limited_total", ())] == 1
    assert got[("tdc_retries_total", ())] == 1
    assert got[("tdc_rate_budget_remaining", ())] == 850
    assert got[("tdc_step_last_success_timestamp_seconds", (("step", "push"),))] == 1002
    assert got[("tdc_step_lag_seconds", (("step", "track"),))] == 2
    assert got[("tdc_step_runs_total", (("outcome", "failure"), ("step", "track")))] == 1
    assert ("tdc_step_last_success_timestamp_seconds", (("step", "track"),)) not in got

    records = {labels[0][1]: v for (name, labels), v in got.items() if name == "tdc_records"}
    grouped = {group: sum(records[s] for s in states) for group, states in RECONCILIATION.items()}
    assert sum(records.values()) == 12
    assert grouped == {"sent": 7, "rejected": 1, "pending": 4}
    assert sum(grouped.values()) == sum(records.values())


def test_healthz_degrades_when_a_step_is_stale(server: tuple[MetricsServer, ConnectorMetrics],
                                               status: StepStatus, clock: Clock) -> None:
    srv, _ = server
    ok = httpx.get(f"{srv.url}/healthz")
    assert ok.status_code == 200
    assert ok.json()["status"] == "ok"

    clock.now += 16  # push (5 s × 3) is now stale, track (60 s × 3) is not
    status.failed("push", 0.1, "SourceError: db locked")
    degraded = httpx.get(f"{srv.url}/healthz")
    assert degraded.status_code == 503
    body = degraded.json()
    assert body["status"] == "degraded"
    assert body["stale_steps"] == ["push"]
    assert body["steps"]["push"]["last_error"] == "SourceError: db locked"
    assert body["steps"]["track"]["threshold_seconds"] == 180

    status.succeeded("push", 0.2)
    assert httpx.get(f"{srv.url}/healthz").status_code == 200
    assert httpx.get(f"{srv.url}/other").status_code == 404


def test_failing_callback_skips_metric_not_scrape() -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("database is locked")

    metrics = ConnectorMetrics(records_by_state=broken, rate_budget=lambda: 1.0)
    text = metrics.render().decode()
    assert "tdc_records" not in text
    assert "tdc_rate_budget_remaining 1.0" in text


def test_port_in_use_is_a_configuration_error_naming_the_setting(
    server: tuple[MetricsServer, ConnectorMetrics],
) -> None:
    from connector.errors import ConfigError

    srv, metrics = server
    with pytest.raises(ConfigError, match=rf"metrics.port: {srv.port} on 127.0.0.1 is already in use by pid"):
        MetricsServer("127.0.0.1", srv.port, metrics.registry).start()


def test_build_metrics_reads_runtime_and_pacer(status: StepStatus) -> None:
    from types import SimpleNamespace

    from connector.settings import load_settings
    from connector.trackdechets.pacing import Pacer

    pacer = Pacer(limit=1000, share=0.9)
    pacer.throttled = 2
    store = SimpleNamespace(counts=lambda: {"a": {"pending": 2, "done": 1}, "b": {"done": 4}})
    runtime = SimpleNamespace(store=store, client=SimpleNamespace(pacer=pacer))
    settings = load_settings(None, {"TDC_METRICS__PORT": "0"})
    server = build_metrics(settings, SimpleNamespace(status=status), lambda: runtime)
    try:
        got = samples(httpx.get(f"{server.url}/metrics").text)
        assert got[("tdc_records", (("state", "done"),))] == 5
        assert got[("tdc_records", (("state", "pending"),))] == 2
        assert got[("tdc_rate_budget_remaining", ())] == 900
        assert got[("tdc_rate_limited_total", ())] == 2
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
