"""A model's schema: its columns, their kinds and roles. Learnt from the reference,
shared by intake (validation) and detection (comparison)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ColumnKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class ModelSchema:
    features: dict[str, ColumnKind]
    prediction: str | None = None
    prediction_kind: ColumnKind | None = None
    # class label -> reference column holding that class's probability
    scores: dict[str, str] = field(default_factory=dict)
    positive_class: str | None = None
    label: str | None = None
    event_id: str | None = None

    @property
    def numerical(self) -> list[str]:
        return sorted(name for name, kind in self.features.items() if kind == "numerical")

    @property
    def categorical(self) -> list[str]:
        return sorted(name for name, kind in self.features.items() if kind == "categorical")

    # without a role in the reference, window columns keep internal names that no
    # feature can collide with
    @property
    def prediction_column(self) -> str:
        return self.prediction or "__prediction"

    @property
    def label_column(self) -> str:
        return self.label or "__label"

    def columns(self) -> dict[str, str]:
        """Every column of the reference with its kind or role, for display."""
        out: dict[str, str] = dict(self.features)
        if self.prediction:
            out[self.prediction] = f"prediction ({self.prediction_kind})"
        for cls, column in self.scores.items():
            out[column] = f"score (class {cls})"
        if self.label:
            out[self.label] = "label"
        if self.event_id:
            out[self.event_id] = "event_id"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "prediction": self.prediction,
            "prediction_kind": self.prediction_kind,
            "scores": self.scores,
            "positive_class": self.positive_class,
            "label": self.label,
            "event_id": self.event_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSchema:
        return cls(
            features=dict(data["features"]),
            prediction=data.get("prediction"),
            prediction_kind=data.get("prediction_kind"),
            scores=dict(data.get("scores") or {}),
            positive_class=data.get("positive_class"),
            label=data.get("label"),
            event_id=data.get("event_id"),
        )
