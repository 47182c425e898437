"""The bounded-intake settings of `Settings`: what one record, one body, one connection
may hold, and how long each may take. Kept beside service/config.py so that each stays
readable."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, Field
from pydantic_settings import BaseSettings

from collectors.events import RecordLimits


class IntakeSettings(BaseSettings):
    max_value_length: int = Field(
        default=256,
        ge=1,
        description="characters of an event id, model_version, categorical value or class "
        "name; a record with a longer one is rejected",
    )
    timestamp_not_before: AwareDatetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC), description="a record timed earlier is rejected"
    )
    timestamp_max_future_seconds: float = Field(
        default=86400.0, gt=0, description="a record timed further ahead of now is rejected"
    )
    dedup_max_ids: int = Field(
        default=100_000,
        gt=0,
        description="event ids kept per model for idempotency besides those of stored events; "
        "a duplicate arriving after its id was dropped is stored again",
    )
    # parsed records take about 10 times their JSON: 32 MiB of bodies grew the process 0.3 GB
    max_body_bytes_in_flight: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="request body bytes held across all requests, from reading to answering; "
        "a body that does not fit within body_wait_seconds answers 503",
    )
    body_wait_seconds: float = Field(
        default=2.0, ge=0, description="how long a body may wait for room in that budget"
    )
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a body not received in full within this answers 408"
    )
    header_read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a connection is closed when a request's head (line and headers) has not "
        "arrived this long after the connection opened or after its last answer",
    )
    max_head_bytes: int = Field(
        default=64 * 1024, ge=1024, description="a longer request head answers 400 and is closed"
    )

    def record_limits(self) -> RecordLimits:
        return RecordLimits(
            max_value_length=self.max_value_length,
            not_before=self.timestamp_not_before.timestamp(),
            max_future_seconds=self.timestamp_max_future_seconds,
        )
