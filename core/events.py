"""The event every collector produces, after validation against its model's schema."""

from __future__ import annotations

from dataclasses import dataclass, field

Value = float | str | None


@dataclass
class Event:
    event_id: str
    timestamp: float
    model_version: str | None
    features: dict[str, Value]
    prediction: Value = None
    scores: dict[str, float] = field(default_factory=dict)
    label: Value = None
