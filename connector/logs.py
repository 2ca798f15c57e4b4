"""Structured logs: JSON lines for machines, a console renderer for people, secrets masked.

Everything goes through the standard ``logging`` module so that lines from libraries
(APScheduler, httpx, uvicorn, alembic) get the same shape and the same masking as ours. The mask
runs last, after exceptions have been formatted to text, so a token quoted inside a traceback is
masked too.

Standard context keys (bind them with ``structlog.contextvars.bound_contextvars`` or pass them as
keyword arguments; print them as they are):

``event``
    what happened, a snake_case verb phrase (``record_created``, ``step_failed``).
``mapping``
    mapping file name (without ``.toml``).
``record_key``
    the source record's stable key.
``bsd_id`` / ``readable_id``
    Trackdéchets id and human number (``BSD-20250101-XXXXXXXX``) once known.
``attempt``
    1-based attempt number of a request or a mutation.
``step``
    daemon step (``ingest``, ``push``, ``track``, ``writeback``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "CONTEXT_KEYS",
    "MASK",
    "SECRET_KEYS",
    "configure_logging",
    "is_idle",
    "logs_to",
    "mask_processor",
    "mask_secrets",
    "redact",
    "register_secret",
]

MASK = "***"
SECRET_KEYS = frozenset({"token", "authorization", "password", "secret", "api_key", "cookie", "x-api-key"})
"""Keys whose values are always masked, whatever they hold (compared lower-case)."""
CONTEXT_KEYS = ("event", "mapping", "record_key", "bsd_id", "readable_id", "attempt", "step")
MIN_SECRET_LENGTH = 4
"""Shorter values are not registered: masking every "ab" would make logs unreadable, not safer."""
MAX_SHOWN_CHARS = 2000
"""Longest text :func:`redact` lets through whole into a stored or displayed message."""
_LOG_VALUE_CHARS = 4000
_LOG_EXCEPTION_CHARS = 20000

_secrets: set[str] = set()
_longest = 0
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()

# Libraries that log one INFO line per job run or per request: useful only when debugging.
_CHATTY = ("apscheduler", "httpx", "httpcore", "uvicorn.access")


IDLE_COUNTS = frozenset({"read", "unchanged", "pages", "seen", "paused", "hints", "rate_budget_remaining"})
"""Step counts that change nothing: a pass with only these is idle and logged at DEBUG."""


def is_idle(counts: Mapping[str, Any]) -> bool:
    """True when a step's counts say it changed nothing (only reads, unchanged records...)."""
    return not any(value for key, value in counts.items() if key not in IDLE_COUNTS)


def register_secret(value: str | SecretStr | None) -> None:
    """Mask ``value`` wherever it appears in any later log line (idempotent, thread-safe)."""
    global _pattern, _longest
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    with _lock:
        new = {value, value.strip()} - _secrets
        if not new:
            return
        _secrets.update(new)
        _longest = max(len(s) for s in _secrets)
        # Longest first so that a secret containing another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (for result files, messages...)."""
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern is not None else text


def redact(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """What may be stored or shown of ``text``: secrets masked, and a labelled excerpt when long.

    The one function for every message that leaves the process's memory: log values, error fields
    in the state store, receipts, ``rejected/*.error.txt``, ``status``, ``preview``, ``/healthz``.
    Masking runs before the cut, on a slice long enough to hold any secret that starts before it,
    so a secret straddling the cut is masked whole.
    """
    if len(text) <= limit:
        return mask_secrets(text)
    head = mask_secrets(text[: limit + _longest])[:limit]
    return f"{head}… [excerpt: first {limit:,} of {len(text):,} characters]"


def _mask_value(value: Any, limit: int = _LOG_VALUE_CHARS) -> Any:
    if isinstance(value, str):
        return redact(value, limit)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and k.lower() in SECRET_KEYS else _mask_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v) for v in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}", limit)
    # Anything else would be rendered with str()/repr() later, out of the mask's reach.
    return redact(str(value), limit)


def mask_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: registered secrets → ``***`` in every value; secret-named keys masked."""
    for key, value in list(event_dict.items()):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = MASK
        elif key.startswith("_"):
            continue  # structlog/stdlib plumbing (_record, _from_structlog), never rendered
        elif key == "exception":  # a formatted traceback: long by nature, bounded all the same
            event_dict[key] = _mask_value(value, _LOG_EXCEPTION_CHARS)
        else:
            event_dict[key] = _mask_value(value)
    return event_dict


def _renderer(fmt: str, stream: TextIO) -> Processor:
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    if fmt == "console" or (fmt == "auto" and is_tty):
        # https://no-color.org: any non-empty NO_COLOR turns colours off, whatever the terminal.
        return structlog.dev.ConsoleRenderer(colors=is_tty and not os.environ.get("NO_COLOR"))
    return structlog.processors.JSONRenderer(ensure_ascii=False)


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] | str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str | SecretStr | None] = (),
) -> None:
    """Send structlog and stdlib logs to ``stream`` (default stderr) as JSON lines or console text.

    Safe to call again (on reload, or from tests): handlers are replaced, not stacked.
    """
    for secret in secrets:
        register_secret(secret)
    stream = stream if stream is not None else sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_processor,
            _renderer(fmt, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_tdc_handler", False):
            root.removeHandler(old)
    handler._tdc_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


@contextmanager
def logs_to(stream: TextIO, *, instead_of: TextIO) -> Iterator[None]:
    """Send the lines the connector's handlers write to ``instead_of`` to ``stream`` for a while.

    ``sync --once`` on a terminal draws progress bars; rich swaps ``sys.stderr`` for a proxy that
    prints above them, but our handler still holds the real stderr and its lines would cut
    through the bars.
    """
    handlers = [
        h for h in logging.getLogger().handlers
        if getattr(h, "_tdc_handler", False) and isinstance(h, logging.StreamHandler)
        and h.stream is instead_of
    ]
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(instead_of)
