"""Settings of the emulator: seed, limits, faults, webhooks, persistence.

One model feeds the CLI flags, the test fixture and the admin API, so a fault a test sets through
``/_emulator/faults`` is the same object a ``--error-probability`` flag fills in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmulatorConfig", "FaultConfig", "OutageWindow", "WebhookConfig"]


class OutageWindow(BaseModel):
    """A period, in seconds since the emulator started, during which every request gets ``status``."""

    model_config = ConfigDict(extra="forbid")

    start_seconds: float = 0.0
    end_seconds: float
    status: int = 503


class FaultConfig(BaseModel):
    """Faults a real client meets: proxy errors, in-doubt commits, slowness, outages, 429 bursts."""

    model_config = ConfigDict(extra="forbid")

    error_probability: float = Field(0.0, ge=0.0, le=1.0)
    """Probability of answering 502, 503 or 504 before executing anything."""
    error_statuses: tuple[int, ...] = (502, 503, 504)
    drop_after_commit_probability: float = Field(0.0, ge=0.0, le=1.0)
    """Probability of executing a mutation, committing it, then closing the connection unanswered."""
    latency_ms: float = Field(0.0, ge=0.0)
    """Delay added before every GraphQL answer."""
    outages: list[OutageWindow] = Field(default_factory=list)
    force_429_count: int = Field(0, ge=0)
    """The next N GraphQL requests get HTTP 429 whatever the counter says (a burst)."""


class WebhookConfig(BaseModel):
    """Delivery settings; the defaults are the real platform's, tests shrink the delays."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    timeout_seconds: float = 5.0
    attempts: int = 3
    backoff_seconds: float = 1.0
    fail_threshold: int = 5
    """A failure when the counter is already at this value deactivates the setting."""
    fail_window_seconds: float = 600.0
    allow_insecure: bool = True
    """Accept ``http://`` and loopback endpoints, which the real platform refuses; needed offline."""


class EmulatorConfig(BaseModel):
    """Everything that shapes one emulator instance."""

    model_config = ConfigDict(extra="forbid")

    seed_path: Path | None = None
    """TOML or JSON file adding users and companies; None means the built-in demo seed only."""
    include_demo_seed: bool = True
    group_companies: int = Field(0, ge=0)
    """Companies of one extra group token (``seed.add_group_token``); 0 for none."""
    group_token: str = "group-token-many-companies-0003"
    """The token of that group user (``seed.GROUP_TOKEN`` by default)."""
    waste_codes_path: Path | None = None
    """JSON list of waste codes (``{"codes": [{"code", "accepted_on"}]}``); None means the packaged
    ``td_emulator/data/waste_codes.json``, or format checks only when the package has none."""
    rate_limit: int = Field(1000, ge=1)
    rate_window_seconds: float = Field(60.0, gt=0)
    max_batch_operations: int = 5
    max_root_fields: int = 5
    max_depth: int = 10
    max_body_bytes: int = 1_000_000
    faults: FaultConfig = Field(default_factory=FaultConfig)
    admin_enabled: bool = False
    sqlite_path: Path | None = None
    """When set, BSDs, status logs and webhook settings survive a restart in this SQLite file."""
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    random_seed: int | None = None
    """Seed of the fault dice, so a faulty run can be replayed exactly."""
    journal_size: int = 10_000
