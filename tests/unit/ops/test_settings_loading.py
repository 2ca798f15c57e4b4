"""Settings: TOML + TDC_* env, every problem at once, no secret in any message."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.settings import EX_CONFIG, Settings, load_settings

TOKEN = "s3cr3t-token-value-0123456789"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(config: Path | None, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(config, env)
    return info.value.problems


def test_defaults_without_file_resolve_against_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings.trackdechets.url == "http://127.0.0.1:7300/"
    assert settings.trackdechets.token is None
    assert settings.state.dir == tmp_path / "var"
    assert settings.state.url == f"sqlite:///{tmp_path}/var/state.db"
    assert settings.mappings.paths == [f"{tmp_path}/mappings/*.toml"]
    assert settings.schedule.intervals() == {"ingest": 10, "push": 5, "track": 60, "writeback": 10}
    assert settings.logging.format == "auto"
    assert settings.warnings == []
    assert EX_CONFIG == 78


def test_file_values_relative_to_file_and_env_overrides(tmp_path: Path) -> None:
    config = write(tmp_path, """
[trackdechets]
url = "https://api.sandbox.trackdechets.beta.gouv.fr/"
timeout_seconds = 12
[state]
dir = "data"
[mappings]
paths = ["m/*.toml"]
[logging]
level = "debug"
format = "JSON"
""")
    settings = load_settings(config, {
        "TDC_TRACKDECHETS__TIMEOUT_SECONDS": "7.5",
        "TDC_TRACKDECHETS__TOKEN": TOKEN,
        "TDC_SCHEDULE__PUSH_SECONDS": "2",
        "TDC_SAFETY__DRY_RUN": "true",
        "TDC_MAPPINGS__PATHS": '["a/*.toml", "/abs/b.toml"]',
        "TDC_CONFIG": "ignored: reserved for the CLI",
        "OTHER": "x",
    })
    assert settings.trackdechets.timeout_seconds == 7.5
    assert settings.trackdechets.token is not None
    assert settings.trackdechets.token.get_secret_value() == TOKEN
    assert settings.state.dir == tmp_path / "data"
    assert settings.state.url == f"sqlite:///{tmp_path}/data/state.db"
    assert settings.mappings.paths == [f"{tmp_path}/a/*.toml", "/abs/b.toml"]
    assert settings.schedule.push_seconds == 2
    assert settings.safety.dry_run is True
    assert settings.logging.level == "DEBUG"
    assert settings.logging.format == "json"
    assert TOKEN not in repr(settings)
    assert TOKEN not in settings.model_dump_json()


def test_relative_sqlite_url_resolves_against_file(tmp_path: Path) -> None:
    config = write(tmp_path, '[state]\nurl = "sqlite:///s/x.db"\n')
    assert load_settings(config, {}).state.url == f"sqlite:///{tmp_path}/s/x.db"
    config = write(tmp_path, '[state]\nurl = "postgresql://u@h/db"\n')
    assert load_settings(config, {}).state.url == "postgresql://u@h/db"


INVALID = [
    pytest.param(
        '[trackdechets]\nurl = "ftp://x"\n', {},
        ["config.toml: trackdechets.url: must be an http(s) URL with a host, e.g. http://127.0.0.1:7300/"],
        id="bad-url",
    ),
    pytest.param(
        '[trackdechets]\nurl = "https://api.trackdechets.beta.gouv.fr"\n', {},
        ["config.toml: trackdechets.url: is the production API; set trackdechets.allow_production = true"
         " to send real BSDs (or use the sandbox api.sandbox.trackdechets.beta.gouv.fr)"],
        id="production-refused",
    ),
    pytest.param(
        '[trackdechets]\ntimout = 3\n', {},
        ["config.toml: trackdechets.timout: unknown key (did you mean 'timeout_seconds'?); valid: "
         "allow_insecure_http, allow_production, rate_limit_per_minute, rate_share, rate_window_seconds, "
         "schema_cache_hours, "
         "timeout_seconds, token, token_file, url"],
        id="unknown-key",
    ),
    pytest.param(
        '[trackdechet]\nurl = "http://127.0.0.1/"\n', {},
        ["config.toml: trackdechet: unknown section (did you mean 'trackdechets'?); valid: daemon, "
         "logging, mappings, metrics, retry, safety, schedule, state, trackdechets, webhooks"],
        id="unknown-section",
    ),
    pytest.param(
        "[schedule]\npush_seconds = 0\n[logging]\nlevel = \"LOUD\"\n",
        {"TDC_RETRY__MAX_ATTEMPTS": "zero"},
        [
            "config.toml: schedule.push_seconds: Input should be greater than 0",
            "env TDC_RETRY__MAX_ATTEMPTS: retry.max_attempts: Input should be a valid integer, unable to "
            "parse string as an integer",
            "config.toml: logging.level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'",
        ],
        id="all-problems-at-once",
    ),
    pytest.param(
        "", {"TDC_TRACKDECHETS": "x", "TDC_NOPE__X": "1", "TDC_MAPPINGS__PATHS": "[oops"},
        [
            "env TDC_MAPPINGS__PATHS: expected a JSON list of strings, e.g. '[\"a/*.toml\"]'",
            "env TDC_NOPE__X: unknown section 'nope'; valid: daemon, logging, mappings, metrics, retry, "
            "safety, schedule, state, trackdechets, webhooks",
            "env TDC_TRACKDECHETS: set one field at a time, as TDC_TRACKDECHETS__<FIELD>",
        ],
        id="env-shapes",
    ),
    pytest.param(
        "[retry]\ninitial_backoff_seconds = 10\nmax_backoff_seconds = 5\n", {},
        ["config.toml: retry.initial_backoff_seconds: is above retry.max_backoff_seconds"],
        id="backoff-order",
    ),
    pytest.param(
        "[trackdechets\n", {}, ["config.toml: invalid TOML: Expected ']' at the end of a table declaration "
                                "(at line 1, column 14)"],
        id="bad-toml",
    ),
]


@pytest.mark.parametrize(("text", "env", "expected"), INVALID)
def test_invalid_configs(tmp_path: Path, text: str, env: dict[str, str], expected: list[str]) -> None:
    config = write(tmp_path, text)
    problems = [p.replace(str(config), "config.toml") for p in problems_of(config, env)]
    assert problems == expected


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert problems_of(missing, {}) == [f"{missing}: file not found"]


def test_token_never_in_messages(tmp_path: Path) -> None:
    config = write(tmp_path, f'[trackdechets]\ntoken = "{TOKEN}"\ntoken_file = 5\nurl = "{TOKEN}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, {"TDC_TRACKDECHETS__TIMEOUT_SECONDS": TOKEN})
    text = str(info.value) + repr(info.value) + repr(info.value.problems)
    assert len(info.value.problems) == 3
    assert TOKEN not in text


def test_token_file_and_credentials_directory(tmp_path: Path) -> None:
    token_file = tmp_path / "tok"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    config = write(tmp_path, '[trackdechets]\ntoken_file = "tok"\n')
    assert load_settings(config, {}).trackdechets.token.get_secret_value() == TOKEN  # type: ignore[union-attr]

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "td-token").write_text("from-credentials\n", encoding="utf-8")
    settings = load_settings(None, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.trackdechets.token.get_secret_value() == "from-credentials"  # type: ignore[union-attr]
    # An explicit token wins over the credential.
    settings = load_settings(None, {"CREDENTIALS_DIRECTORY": str(creds), "TDC_TRACKDECHETS__TOKEN": TOKEN})
    assert settings.trackdechets.token.get_secret_value() == TOKEN  # type: ignore[union-attr]


def test_token_file_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    config = write(tmp_path, '[trackdechets]\ntoken_file = "empty"\n')
    assert problems_of(config, {}) == [f"config.toml: trackdechets.token_file: {tmp_path}/empty is empty"
                                       .replace("config.toml", str(config))]
    assert problems_of(None, {"TDC_TRACKDECHETS__TOKEN_FILE": "/nonexistent/tok"}) == [
        "env TDC_TRACKDECHETS__TOKEN_FILE: trackdechets.token_file: cannot read /nonexistent/tok "
        "(No such file or directory)"
    ]


def test_warnings_for_unusual_hosts(tmp_path: Path) -> None:
    settings = load_settings(None, {"TDC_TRACKDECHETS__URL": "http://td.example.org/",
                                    "TDC_TRACKDECHETS__ALLOW_INSECURE_HTTP": "true",
                                    "TDC_METRICS__ENABLED": "1", "TDC_METRICS__HOST": "0.0.0.0"})
    assert settings.warnings == [
        "trackdechets.url: td.example.org is neither Trackdéchets nor loopback",
        "trackdechets.url: plain http to td.example.org sends the token unencrypted",
        "metrics.host: 0.0.0.0 exposes metrics beyond loopback",
    ]
    prod = load_settings(None, {"TDC_TRACKDECHETS__URL": "https://api.trackdechets.beta.gouv.fr",
                                "TDC_TRACKDECHETS__ALLOW_PRODUCTION": "true"})
    assert prod.warnings == []


def test_load_settings_ignores_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDC_SCHEDULE__PUSH_SECONDS", "99")
    assert load_settings(None, {}).schedule.push_seconds == 5
    assert load_settings(None).schedule.push_seconds == 99
    assert Settings().schedule.push_seconds == 99
