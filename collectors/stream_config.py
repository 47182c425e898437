"""What the stream consumer is told: its settings, and the counter it reports to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class StreamCounter(Protocol):
    def count_stream(self, stream: str, outcome: str, amount: int) -> None:
        """outcome: read, acked, redelivered, dead_lettered, deleted."""

    def set_stream_status(self, stream: str, lag: int | None, pending: int) -> None: ...


@dataclass(frozen=True)
class StreamSettings:
    streams: dict[str, str | None]  # stream key -> model, or None: entries name it
    consumer: str
    group: str = "driftmon"
    batch_size: int = 500
    batches_in_flight: int = 1
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    start_id: str = "0"
