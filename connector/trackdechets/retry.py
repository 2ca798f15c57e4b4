"""The one retry policy of the connector, built in one place.

Only ``NotSent`` is retried here: sending it again cannot create a duplicate. An ``InDoubt``
mutation goes back to the engine, which reconciles before anything is resent; a ``Rejected`` or a
``ClientBug`` would fail the same way again. The wait honours what the server asked for
(``Retry-After``, or the rate-limit reset, carried by the error as ``retry_after``) and otherwise
backs off exponentially with jitter so that several instances do not retry in step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
import tenacity
from pydantic import BaseModel, ConfigDict, Field
from tenacity.wait import wait_base

from connector.trackdechets.errors import NotSent, TrackdechetsError

__all__ = ["RetryPolicy", "build_retrying"]

log = structlog.get_logger("connector.trackdechets")


class RetryPolicy(BaseModel):
    """Caps of the retry loop; the ``[trackdechets.retry]`` settings section mirrors it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    """Attempts in all, the first one included."""
    initial_backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; doubles at each attempt, plus up to as much jitter."""
    max_backoff: float = Field(default=30.0, ge=0)
    """Ceiling of one backoff wait, in seconds."""
    max_retry_after: float = Field(default=120.0, ge=0)
    """Ceiling of a wait the server asked for, so that a wild header cannot stall a worker."""


class _WaitServerOrBackoff(wait_base):
    """The server's ``retry_after`` when it gave one, else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=policy.initial_backoff, max=policy.max_backoff, jitter=policy.initial_backoff
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self._policy.max_retry_after))
        return float(self._backoff(retry_state))


def _log_attempt(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    fields: dict[str, Any] = (exc.log_fields() if isinstance(exc, TrackdechetsError)
                              else {"error": type(exc).__name__})
    fields["attempt"] = retry_state.attempt_number
    wait = retry_state.next_action.sleep if retry_state.next_action else None
    log.warning("trackdechets.retry", wait_s=round(wait, 3) if wait is not None else None, **fields)


def build_retrying(
    policy: RetryPolicy,
    *,
    on_attempt: Callable[[tenacity.RetryCallState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """A fresh ``Retrying`` for one logical call; ``sleep`` is injectable (tests, stop events)."""

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        _log_attempt(retry_state)
        if on_attempt is not None:
            on_attempt(retry_state)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=_WaitServerOrBackoff(policy),
        retry=tenacity.retry_if_exception_type(NotSent),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
