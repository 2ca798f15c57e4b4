"""Settings of the connector: one TOML file, overridden by ``TDC_*`` environment variables.

The model mirrors ``config.example.toml`` section for section. :func:`load_settings` merges the
sources itself (rather than letting pydantic-settings read ``os.environ``) so that every problem can
name where the bad value came from, and so that tests can pass their own environment. Every problem
is reported at once, as a :class:`~connector.errors.ConfigError`; no secret value is ever echoed.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connector.errors import ConfigError
from connector.hosts import is_loopback, normalise_host

__all__ = [
    "ENV_PREFIX",
    "EX_CONFIG",
    "PRODUCTION_HOST",
    "SANDBOX_HOST",
    "DaemonSettings",
    "LoggingSettings",
    "MappingsSettings",
    "MetricsSettings",
    "RetrySettings",
    "SafetySettings",
    "ScheduleSettings",
    "Settings",
    "StateSettings",
    "TrackdechetsSettings",
    "load_settings",
]

EX_CONFIG = 78
"""Exit status for configuration errors (sysexits.h); systemd's RestartPreventExitStatus uses it."""
ENV_PREFIX = "TDC_"
ENV_NESTING = "__"
RESERVED_ENV = frozenset({"TDC_CONFIG"})
"""``TDC_*`` names that are not settings (the CLI may read the config path from ``TDC_CONFIG``)."""
PRODUCTION_HOST = "api.trackdechets.beta.gouv.fr"
SANDBOX_HOST = "api.sandbox.trackdechets.beta.gouv.fr"
CREDENTIAL_NAME = "td-token"
"""File name of the token under ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=td-token:...``)."""

# Relative paths resolve against the config file's folder; validators read it from here because
# pydantic-settings does not forward a validation context.
_base_dir: ContextVar[Path | None] = ContextVar("tdc_settings_base_dir", default=None)
_explicit_only: ContextVar[bool] = ContextVar("tdc_settings_explicit_only", default=False)


def _resolve(path: Path) -> Path:
    path = path.expanduser()
    if path.is_absolute():
        return path
    return (_base_dir.get() or Path.cwd()) / path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True)


class TrackdechetsSettings(_Section):
    """Where and how to reach the Trackdéchets GraphQL API."""

    url: str = "http://127.0.0.1:7300/"
    """GraphQL endpoint. The production API is refused unless ``allow_production`` is true."""
    token: SecretStr | None = None
    """API token (prefer the env var ``TDC_TRACKDECHETS__TOKEN`` or ``token_file``)."""
    token_file: Path | None = None
    """File holding the token; used when ``token`` is not set. Under systemd,
    ``$CREDENTIALS_DIRECTORY/td-token`` is read when neither is set."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of one HTTP request, in seconds."""
    allow_production: bool = False
    """Must be true to talk to the production API (``https://api.trackdechets.beta.gouv.fr``)."""
    allow_insecure_http: bool = False
    """Allow ``http://`` to a host that is not loopback (the token would travel unencrypted)."""
    rate_limit_per_minute: int = Field(default=1000, gt=0)
    """Requests per minute the API accepts from this IP."""
    rate_share: float = Field(default=0.9, gt=0, le=1)
    """Share of the rate limit the connector allows itself (the rest is headroom)."""
    rate_window_seconds: float = Field(default=60.0, gt=0)
    """Length of the API's rate-limit window (60 s on Trackdéchets; the emulator can scale it down)."""
    schema_cache_hours: float = Field(default=24.0, ge=0)
    """How long the introspected GraphQL schema is reused before it is fetched again."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return normalise_http_url(value)

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _clean_token(value)

    @field_validator("token_file")
    @classmethod
    def _resolve_token_file(cls, value: Path | None) -> Path | None:
        return None if value is None else _resolve(value)


def normalise_http_url(value: str) -> str:
    """``value`` with its host in canonical form (see :func:`connector.hosts.normalise_host`), so
    that every check on the host (production lock, loopback, plain http) sees what the HTTP client
    will connect to. A user or password in the URL is refused: it would travel and be logged."""
    text = value.strip()
    parts = urlsplit(text)
    example = "e.g. http://127.0.0.1:7300/"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, {example}")
    if "@" in parts.netloc or "\\" in text:
        raise ValueError("must not hold a user name, a password or a backslash")
    try:
        port = parts.port
        host = normalise_host(parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc)
    except ValueError as exc:
        raise ValueError(f"{exc}, {example}") from None
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port is None else f"{shown}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def _clean_token(value: SecretStr | None) -> SecretStr | None:
    """Surrounding whitespace trimmed; what remains must be printable ASCII without spaces (an API
    token always is): a ``\\r`` from a Windows editor or a non-ASCII look-alike is a config error."""
    if value is None:
        return None
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError("is empty")
    bad = next((i for i, c in enumerate(text, 1) if not ("!" <= c <= "~")), None)
    if bad is not None:
        kind = "a control character" if ord(text[bad - 1]) < 32 or text[bad - 1] == "\x7f" else (
            "a space" if text[bad - 1].isspace() else "a non-ASCII character")
        raise ValueError(f"contains {kind} at position {bad}: a token is printable ASCII only "
                         "(re-copy it from Trackdéchets, without the surrounding text)")
    return SecretStr(text)


class StateSettings(_Section):
    """Where the state store lives."""

    dir: Path = Path("./var")
    """Folder for the state store and caches (the systemd unit sets it to its StateDirectory)."""
    url: str = ""
    """SQLAlchemy URL of the state store; empty means ``sqlite:///<state.dir>/state.db``."""

    @field_validator("dir")
    @classmethod
    def _resolve_dir(cls, value: Path) -> Path:
        return _resolve(value)

    @field_validator("url")
    @classmethod
    def _resolve_sqlite(cls, value: str) -> str:
        # A relative SQLite path would otherwise depend on the daemon's working directory.
        prefix = "sqlite:///"
        if value.startswith(prefix) and not value.startswith(prefix + "/") and value != prefix:
            rest = value[len(prefix) :]
            if rest != ":memory:" and not rest.startswith("file:"):
                return prefix + str(_resolve(Path(rest)))
        return value

    def model_post_init(self, __context: Any) -> None:
        if not self.url:
            self.url = f"sqlite:///{self.dir / 'state.db'}"


class MappingsSettings(_Section):
    """Which mapping files to load."""

    paths: list[str] = Field(default_factory=lambda: ["mappings/*.toml"])
    """Glob patterns of mapping files, relative to the config file's folder."""

    @field_validator("paths")
    @classmethod
    def _resolve_globs(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one pattern")
        return [str(_resolve(Path(p))) for p in value]


class ScheduleSettings(_Section):
    """How often each step runs, in seconds."""

    ingest_seconds: float = Field(default=10.0, gt=0)
    """Interval of the ingest step (read the business system)."""
    push_seconds: float = Field(default=5.0, gt=0)
    """Interval of the push step (send due mutations)."""
    track_seconds: float = Field(default=60.0, gt=0)
    """Interval of the track step (poll BSD statuses with ``updatedAfter``)."""
    writeback_seconds: float = Field(default=10.0, gt=0)
    """Interval of the writeback step (write statuses to the business system)."""
    track_overlap_seconds: float = Field(default=300.0, ge=0)
    """Each tracking poll starts this much before the last cursor, to absorb clock skew."""
    companies_refresh_seconds: float = Field(default=3600.0, gt=0)
    """The token's company list (``myCompanies``) is read again when this old."""
    writeback_refresh_seconds: float = Field(default=21600.0, ge=0)
    """Every record that has a BSD is written back again this often, so that lost or re-inserted
    rows get their ids and statuses back (0: never). Records without a BSD are not: they would
    write empty ids over those the business system may hold."""

    def intervals(self) -> dict[str, float]:
        """Step name → interval, the shape :class:`connector.daemon.Daemon` takes."""
        return {
            "ingest": self.ingest_seconds,
            "push": self.push_seconds,
            "track": self.track_seconds,
            "writeback": self.writeback_seconds,
        }


class RetrySettings(_Section):
    """Retries of transient faults (network, 5xx, 429)."""

    max_attempts: int = Field(default=6, ge=1)
    """Attempts per request before the fault is left for the next run."""
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    """First wait between attempts; doubles each time (with jitter)."""
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    """Longest wait between attempts (``Retry-After`` is honoured up to this)."""


class SafetySettings(_Section):
    """Locks against mistakes that would cost real BSDs."""

    max_creations_per_run: int = Field(default=1000, ge=0)
    """A push run stops after this many creations and says so (0 = no creation at all)."""
    dry_run: bool = False
    """Map, validate and record, but send nothing to Trackdéchets."""


class DaemonSettings(_Section):
    """The long-running process."""

    drain_timeout_seconds: float = Field(default=30.0, ge=0)
    """On the first SIGTERM, how long running steps may take to finish."""
    step_health_factor: float = Field(default=3.0, gt=0)
    """A step is degraded when it has not succeeded for factor × its interval."""


class MetricsSettings(_Section):
    """The optional HTTP endpoint serving ``/metrics`` and ``/healthz``."""

    enabled: bool = False
    """Serve the endpoint."""
    host: str = "127.0.0.1"
    """Address to bind; loopback by default (metrics are not meant for the internet)."""
    port: int = Field(default=9464, ge=0, le=65535)
    """TCP port (0 picks a free one)."""


class WebhooksSettings(_Section):
    """An optional receiver for Trackdéchets webhooks: a change is tracked at once, not at the next walk."""

    enabled: bool = False
    """Listen for webhooks (the ``updatedAfter`` walks go on anyway: webhooks can be lost)."""
    host: str = "127.0.0.1"
    """Address to bind; put the TLS reverse proxy the platform calls in front of it."""
    port: int = Field(default=9465, ge=0, le=65535)
    """TCP port (0 picks a free one)."""
    path: str = "/webhooks/trackdechets"
    """URL path the platform posts to."""
    token: SecretStr | None = None
    """The secret given to ``createWebhookSetting`` (20 to 100 characters); required when enabled."""

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _clean_token(value)


class LoggingSettings(_Section):
    """Log lines on stderr."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Lowest level written."""
    format: Literal["auto", "json", "console"] = "auto"
    """``json`` lines, a ``console`` renderer for people, or ``auto`` (console on a TTY)."""

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Every setting of the connector. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTING,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    trackdechets: TrackdechetsSettings = Field(default_factory=TrackdechetsSettings)
    """The Trackdéchets API."""
    state: StateSettings = Field(default_factory=StateSettings)
    """The state store."""
    mappings: MappingsSettings = Field(default_factory=MappingsSettings)
    """Mapping files."""
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    """Step intervals."""
    retry: RetrySettings = Field(default_factory=RetrySettings)
    """Retries."""
    safety: SafetySettings = Field(default_factory=SafetySettings)
    """Safety locks."""
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    """The daemon."""
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    """Metrics and health endpoint."""
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    """Webhook receiver."""
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    """Logs."""

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Things that are allowed but worth a log line at start (e.g. an unknown API host)."""
        return self._warnings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _explicit_only.get():
            return (init_settings,)
        return (init_settings, env_settings)


# --- loading ---------------------------------------------------------------------------------

_Origins = dict[tuple[str, ...], str]
"""Where each value came from (a path in the model → the file name or the env variable)."""


def load_settings(config_path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``config_path`` (optional), apply ``TDC_*`` overrides from ``env`` (default
    ``os.environ``), resolve the token, and validate everything.

    Raises :class:`ConfigError` listing every problem, each prefixed with its origin, e.g.
    ``config.toml: trackdechets.url: must be an http(s) URL``.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: list[str] = []
    origins: _Origins = {}
    data: dict[str, Any] = {}
    label = str(config_path) if config_path is not None else "settings"
    base = Path.cwd()
    if config_path is not None:
        base = config_path.expanduser().absolute().parent
        data = _read_toml(config_path.expanduser(), label, problems)
        _record_origins(data, (), label, origins)
    _merge(data, _env_overrides(environ, origins, problems))

    # Sections are validated one by one so that cross-field checks still run on the valid ones:
    # the operator gets every problem in one go.
    sections: dict[str, BaseModel] = {}
    for key in data:
        if key not in Settings.model_fields:
            problems.append(
                f"{_origin((key,), origins, label)}: {key}: unknown section"
                f"{_suggest(key, Settings.model_fields)}"
            )
    with explicit_sources(base):
        for name, field in Settings.model_fields.items():
            model = field.annotation
            assert isinstance(model, type)
            assert issubclass(model, BaseModel)
            try:
                sections[name] = model.model_validate(data.get(name, {}))
            except ValidationError as exc:
                problems.extend(
                    _format_error({**err, "loc": (name, *err["loc"])}, origins, label)
                    for err in exc.errors(include_url=False)
                )
        warnings = _check_semantics(sections, origins, label, environ, problems)
        if problems:
            raise ConfigError(f"invalid configuration ({len(problems)} problem(s))", problems=problems)
        settings = Settings.model_validate(sections)
    settings.warnings.extend(warnings)
    return settings


@contextmanager
def explicit_sources(base_dir: Path) -> Iterator[None]:
    """Validate only the data given (never ``os.environ``); relative paths resolve against base_dir."""
    t1 = _explicit_only.set(True)
    t2 = _base_dir.set(base_dir)
    try:
        yield
    finally:
        _explicit_only.reset(t1)
        _base_dir.reset(t2)


def _read_toml(path: Path, label: str, problems: list[str]) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        problems.append(f"{label}: file not found")
    except UnicodeDecodeError:
        problems.append(f"{label}: not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        # tomllib messages carry a position, never the offending text.
        problems.append(f"{label}: invalid TOML: {exc}")
    except OSError as exc:
        problems.append(f"{label}: cannot read ({exc.strerror or type(exc).__name__})")
    return {}


def _record_origins(data: Mapping[str, Any], prefix: tuple[str, ...], label: str, out: _Origins) -> None:
    for key, value in data.items():
        out[(*prefix, key)] = label
        if isinstance(value, Mapping):
            _record_origins(value, (*prefix, key), label, out)


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _env_overrides(environ: Mapping[str, str], origins: _Origins, problems: list[str]) -> dict[str, Any]:
    """``TDC_SECTION__FIELD=value`` → ``{"section": {"field": value}}``; empty values are ignored."""
    sections = Settings.model_fields
    out: dict[str, Any] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in RESERVED_ENV:
            continue
        value = environ[name]
        if value == "":
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        if parts[0] not in sections:
            problems.append(f"env {name}: unknown section {parts[0]!r}{_suggest(parts[0], sections)}")
            continue
        if len(parts) != 2 or not parts[1]:
            example = f"{ENV_PREFIX}{parts[0].upper()}{ENV_NESTING}<FIELD>"
            problems.append(f"env {name}: set one field at a time, as {example}")
            continue
        section, field = parts
        converted: Any = value
        if _is_list_field(section, field):
            converted = _parse_list(value)
            if converted is None:
                problems.append(f"env {name}: expected a JSON list of strings, e.g. '[\"a/*.toml\"]'")
                continue
        out.setdefault(section, {})[field] = converted
        origins[(section, field)] = f"env {name}"
    return out


def _is_list_field(section: str, field: str) -> bool:
    model = Settings.model_fields[section].annotation
    if not isinstance(model, type) or not issubclass(model, BaseModel) or field not in model.model_fields:
        return False
    return getattr(model.model_fields[field].annotation, "__origin__", None) is list


def _parse_list(value: str) -> list[Any] | None:
    if not value.lstrip().startswith("["):
        return [value]
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


def _origin(loc: tuple[str, ...], origins: _Origins, default: str) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return origins[loc[:end]]
    return default


def _suggest(name: str, valid: Iterator[str] | Mapping[str, Any]) -> str:
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; valid: {', '.join(names)}"


def _format_error(err: Any, origins: _Origins, label: str) -> str:
    """One pydantic error → one operator line. Inputs are never printed: they may be secrets."""
    loc = tuple(str(p) for p in err["loc"])
    where = f"{_origin(loc, origins, label)}: {'.'.join(loc)}"
    if err["type"] == "extra_forbidden":
        if len(loc) == 1:
            return f"{where}: unknown section{_suggest(loc[0], Settings.model_fields)}"
        model = Settings.model_fields[loc[0]].annotation
        valid = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        return f"{where}: unknown key{_suggest(loc[-1], valid)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def _check_semantics(
    sections: Mapping[str, BaseModel],
    origins: _Origins,
    label: str,
    environ: Mapping[str, str],
    problems: list[str],
) -> list[str]:
    """Rules across fields and those needing I/O (token files); returns warnings."""
    warnings: list[str] = []

    def where(*loc: str) -> str:
        return f"{_origin(loc, origins, label)}: {'.'.join(loc)}"

    td = sections.get("trackdechets")
    if isinstance(td, TrackdechetsSettings):
        _check_trackdechets(td, where, environ, problems, warnings)
    retry = sections.get("retry")
    if isinstance(retry, RetrySettings) and retry.initial_backoff_seconds > retry.max_backoff_seconds:
        problems.append(f"{where('retry', 'initial_backoff_seconds')}: is above retry.max_backoff_seconds")
    hooks = sections.get("webhooks")
    if isinstance(hooks, WebhooksSettings) and hooks.enabled:
        secret = hooks.token.get_secret_value() if hooks.token else ""
        if not 20 <= len(secret) <= 100:
            problems.append(
                f"{where('webhooks', 'token')}: required when webhooks are enabled, 20 to 100 "
                "characters (the platform's rule); set TDC_WEBHOOKS__TOKEN"
            )
    metrics = sections.get("metrics")
    if isinstance(metrics, MetricsSettings) and metrics.enabled and not is_loopback(metrics.host):
        warnings.append(f"metrics.host: {metrics.host} exposes metrics beyond loopback")
    return warnings


def _check_trackdechets(
    td: TrackdechetsSettings,
    where: Callable[..., str],
    environ: Mapping[str, str],
    problems: list[str],
    warnings: list[str],
) -> None:
    host = urlsplit(td.url).hostname or ""  # already normalised by the field validator
    if host == PRODUCTION_HOST and not td.allow_production:
        problems.append(
            f"{where('trackdechets', 'url')}: is the production API; set trackdechets.allow_production"
            f" = true to send real BSDs (or use the sandbox {SANDBOX_HOST})"
        )
    elif host not in (PRODUCTION_HOST, SANDBOX_HOST) and not is_loopback(host):
        warnings.append(f"trackdechets.url: {host} is neither Trackdéchets nor loopback")
    if urlsplit(td.url).scheme == "http" and not is_loopback(host):
        if td.allow_insecure_http and host != PRODUCTION_HOST:
            warnings.append(f"trackdechets.url: plain http to {host} sends the token unencrypted")
        else:
            problems.append(
                f"{where('trackdechets', 'url')}: plain http to {host} would send the token unencrypted; "
                "use https (or set trackdechets.allow_insecure_http = true for a test server)"
            )

    if td.token is None:
        token_path, token_loc = td.token_file, where("trackdechets", "token_file")
        if token_path is None and environ.get("CREDENTIALS_DIRECTORY"):
            candidate = Path(environ["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
            if candidate.is_file():
                token_path, token_loc = candidate, f"credential {CREDENTIAL_NAME}"
        if token_path is not None:
            try:
                text = token_path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                problems.append(f"{token_loc}: cannot read {token_path} ({reason})")
            else:
                try:
                    td.token = _clean_token(SecretStr(text))
                except ValueError as exc:
                    problems.append(f"{token_loc}: {token_path} {exc}")
