"""How the alert dispatcher works through the outbox (batch, slots per channel, lease,
timeouts, maximum age) and when a failed notification is tried again: exponential
backoff with full jitter, a receiver's Retry-After a floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# past any cap already; stops 2**attempts from growing without bound
MAX_EXPONENT = 62


class RandomSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class DispatcherSettings:
    batch_size: int = 100
    # requests in flight per channel
    concurrency: int = 4
    # must outlast a batch's requests, else another replica claims them mid-send
    lease_seconds: float = 120.0
    poll_seconds: float = 1.0
    timeout_seconds: float = 10.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    max_age_seconds: float = 86_400.0
    # the most of a receiver's Retry-After that is honoured
    max_retry_after_seconds: float = 3600.0
    # exact host names deliveries may go to; None: any
    allowed_hosts: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        for name in ("poll_seconds", "timeout_seconds", "backoff_base_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_cap_seconds must be at least backoff_base_seconds")
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError("lease_seconds must be longer than timeout_seconds")
        if self.max_age_seconds <= 0 or self.max_retry_after_seconds < 0:
            raise ValueError("max_age_seconds must be positive")


def backoff_seconds(
    attempts: int, settings: DispatcherSettings, rng: RandomSource, retry_after: float | None
) -> float:
    """Full jitter (uniform over [0, min(cap, base·2^attempts)]), so that notifications
    failing together do not retry together; a receiver's Retry-After is a floor."""
    exponent = min(max(attempts, 0), MAX_EXPONENT)
    ceiling = min(settings.backoff_cap_seconds, settings.backoff_base_seconds * 2**exponent)
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.max_retry_after_seconds))
    return delay
