"""The production lock and the plain-http rule against every spelling of a host we could think of,
and the token rules (trimmed; control characters and non-ASCII refused)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connector.errors import ConfigError
from connector.hosts import is_loopback, normalise_host
from connector.settings import PRODUCTION_HOST, load_settings

TOKEN = "tok-0123456789abcdef0123456789abcdef"

PRODUCTION_SPELLINGS = [
    "https://api.trackdechets.beta.gouv.fr/",
    "https://API.TRACKDECHETS.BETA.GOUV.FR/",
    "https://api.trackdechets.beta.gouv.fr./",  # trailing dot: same DNS name
    "https://api\u3002trackdechets\u3002beta\u3002gouv\u3002fr/",  # ideographic full stop
    "https://api\uff0etrackdechets\uff0ebeta\uff0egouv\uff0efr/",  # full-width full stop
    "https://api\uff61trackdechets\uff61beta\uff61gouv\uff61fr/",  # half-width ideographic full stop
    "https://\uff41\uff50\uff49.trackdechets.beta.gouv.fr/",  # full-width "api"
    "https://api.trackdechets.beta.gouv.fr:443/",
    "  https://api.trackdechets.beta.gouv.fr/  ",
    "HTTPS://api.trackdechets.beta.gouv.fr",
    "https://api.trackdechets.beta.gouv.fr\u3002/",  # look-alike trailing dot
]


def problems(env: dict[str, str], token: str | None = TOKEN) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {**({"TDC_TRACKDECHETS__TOKEN": token} if token else {}), **env})
    return info.value.problems


@pytest.mark.parametrize("url", PRODUCTION_SPELLINGS)
def test_every_spelling_of_production_is_locked(url: str) -> None:
    # What the HTTP client would really connect to is production: the lock must see it too
    # (httpx refuses full-width letters outright; other clients fold them like NFKC does).
    try:
        assert httpx.URL(url.strip()).host.rstrip(".") == PRODUCTION_HOST
    except httpx.InvalidURL:
        assert "\uff41" in url
    assert any("is the production API" in p for p in problems({"TDC_TRACKDECHETS__URL": url}))


@pytest.mark.parametrize("url", PRODUCTION_SPELLINGS)
def test_allowed_production_is_used_in_its_normal_form(url: str) -> None:
    settings = load_settings(None, {"TDC_TRACKDECHETS__URL": url, "TDC_TRACKDECHETS__TOKEN": TOKEN,
                                    "TDC_TRACKDECHETS__ALLOW_PRODUCTION": "true"})
    assert httpx.URL(settings.trackdechets.url).host == PRODUCTION_HOST
    assert settings.trackdechets.url.startswith(f"https://{PRODUCTION_HOST}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://api.trackdechets.beta.gouv.fr/", "is the production API"),
        ("http://api.sandbox.trackdechets.beta.gouv.fr./", "plain http to api.sandbox"),
        ("http://td.example.org/", "plain http to td.example.org"),
        ("http://10.0.0.5:7300/", "plain http to 10.0.0.5"),
        ("http://0.0.0.0:7300/", "plain http to 0.0.0.0"),
        ("https://user:pw@api.sandbox.trackdechets.beta.gouv.fr/", "must not hold a user name"),
        ("https://api.sandbox.trackdechets.beta.gouv.fr@api.trackdechets.beta.gouv.fr/", "must not hold"),
        ("https://api.trackdechets.beta.gouv.fr\\@x.example/", "must not hold"),
        ("https://api%2Etrackdechets.beta.gouv.fr/", "is not a valid host name"),
        ("https://api..trackdechets.beta.gouv.fr/", "is not a valid host name"),
        ("https://api trackdechets/", "is not a valid host name"),
        ("ftp://api.trackdechets.beta.gouv.fr/", "must be an http(s) URL"),
        ("https:///graphql", "must be an http(s) URL"),
    ],
)
def test_bypass_attempts_are_refused(url: str, expected: str) -> None:
    found = problems({"TDC_TRACKDECHETS__URL": url})
    assert any(expected in p for p in found), found
    assert TOKEN not in "\n".join(found)


def test_plain_http_beyond_loopback_needs_an_explicit_setting_and_never_for_production() -> None:
    env = {"TDC_TRACKDECHETS__URL": "http://td.example.org/", "TDC_TRACKDECHETS__TOKEN": TOKEN,
           "TDC_TRACKDECHETS__ALLOW_INSECURE_HTTP": "true"}
    warnings = " ".join(load_settings(None, env).warnings)
    assert "plain http to td.example.org sends the token unencrypted" in warnings
    prod = {**env, "TDC_TRACKDECHETS__URL": "http://api.trackdechets.beta.gouv.fr/",
            "TDC_TRACKDECHETS__ALLOW_PRODUCTION": "true"}
    assert any("plain http" in p for p in problems(prod))


@pytest.mark.parametrize("url", ["http://127.0.0.1:7300/", "http://localhost:7300/", "http://LOCALHOST.:7300/",
                                 "http://[::1]:7300/", "http://127.0.0.2/"])
def test_loopback_http_is_fine(url: str) -> None:
    settings = load_settings(None, {"TDC_TRACKDECHETS__URL": url, "TDC_TRACKDECHETS__TOKEN": TOKEN})
    assert settings.warnings == []
    assert is_loopback(httpx.URL(settings.trackdechets.url).host)


def test_normalise_host_examples() -> None:
    assert normalise_host("Bücher.Example.") == "xn--bcher-kva.example"
    assert normalise_host("[::1]") == "::1"
    assert normalise_host("127.0.0.1.") == "127.0.0.1"
    with pytest.raises(ValueError):
        normalise_host("a/b")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (f"{TOKEN}\r", None),  # trailing CR (a Windows editor): trimmed
        (f"  {TOKEN}\n", None),
        (f"tok\r{TOKEN}", "contains a control character at position 4"),
        (f"tok\x00{TOKEN}", "contains a control character at position 4"),
        (f"tök{TOKEN}", "contains a non-ASCII character at position 2"),
        (f"tok {TOKEN}", "contains a space at position 4"),
        ("   ", "is empty"),
    ],
)
def test_token_rules(tmp_path: Path, token: str, expected: str | None) -> None:
    for env in ({"TDC_TRACKDECHETS__TOKEN": token},
                {"TDC_TRACKDECHETS__TOKEN_FILE": str(_write(tmp_path, token))}):
        if expected is None:
            settings = load_settings(None, env)
            assert settings.trackdechets.token is not None
            assert settings.trackdechets.token.get_secret_value() == TOKEN
        else:
            found = problems(env, token=None)
            assert any(expected in p for p in found), found
            assert all(TOKEN not in p for p in found)


def test_webhook_token_follows_the_same_rules() -> None:
    found = problems({"TDC_WEBHOOKS__ENABLED": "true",
                      "TDC_WEBHOOKS__TOKEN": "ünicode-webhook-secret-123456"})
    assert any("webhooks.token: contains a non-ASCII character" in p for p in found), found


def _write(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "token"
    path.write_bytes(token.encode("utf-8"))
    return path


@pytest.mark.slow  # a process: the CLI's imports take several seconds on a busy machine
def test_check_with_a_non_ascii_token_is_a_configuration_error_not_a_crash(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TDC_")}
    env["TDC_TRACKDECHETS__TOKEN"] = "tök-0123456789abcdef0123456789"
    done = subprocess.run([sys.executable, "-m", "connector", "check"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 78, done.stdout + done.stderr
    assert "trackdechets.token: contains a non-ASCII character at position 2" in done.stderr
    assert "Traceback" not in done.stderr
    assert "0123456789abcdef" not in done.stdout + done.stderr
