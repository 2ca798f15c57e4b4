"""The shipped unit file: hardened, notify-based, token only through LoadCredential."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.settings import EX_CONFIG, load_settings

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "td-connector.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "60"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", str(EX_CONFIG)),
        ("DynamicUser", "yes"),
        ("StateDirectory", "td-connector"),
        ("ConfigurationDirectory", "td-connector"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("ProtectProc", "invisible"),
        ("LimitNOFILE", "4096"),
        ("UMask", "0077"),
        ("LoadCredential", "td-token:/etc/td-connector/token"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Environment", "TDC_STATE__DIR=%S/td-connector"),
        ("ExecStart", "/usr/local/bin/td-connector run --config /etc/td-connector/config.toml"),
    ],
)
def test_directive(service: dict[str, list[str]], key: str, value: str) -> None:
    assert value in service.get(key, []), f"{key}={value} missing; has {service.get(key)}"


def test_syscall_filter_starts_from_system_service(service: dict[str, list[str]]) -> None:
    assert service["SystemCallFilter"][0] == "@system-service"


def test_stop_timeout_leaves_room_for_the_drain(service: dict[str, list[str]]) -> None:
    drain = load_settings(None, {}).daemon.drain_timeout_seconds
    assert float(service["TimeoutStopSec"][0]) > drain


def test_no_token_in_the_unit() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert "TDC_TRACKDECHETS__TOKEN" not in text
    assert "PassEnvironment" not in text
    service = parse_unit(text)["Service"]
    env = " ".join(service.get("Environment", []))
    assert "TOKEN" not in env.upper()
    assert "EnvironmentFile" not in service
