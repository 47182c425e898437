"""A model's schema: its columns, their kinds and roles. Learnt from the reference,
shared by intake (validation) and detection (comparison)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Literal

ColumnKind = Literal["numerical", "categorical"]
# what happens to a PII column's values before anything is stored (models YAML `pii:`)
PiiAction = Literal["hash", "drop"]
# hex digits of a PII token: 128 bits of the HMAC, no collision in any real column
TOKEN_HEX_DIGITS = 32


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
    # column -> PII action, fixed at reference upload: every replica and intake path
    # applies the same policy without reading the models file
    pii: dict[str, PiiAction] = field(default_factory=dict)

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
        for name in self.features.keys() & {c for c, a in self.pii.items() if a == "hash"}:
            out[name] = f"{self.features[name]} (pii: hash)"
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
        out: dict[str, Any] = {
            "features": self.features,
            "prediction": self.prediction,
            "prediction_kind": self.prediction_kind,
            "scores": self.scores,
            "positive_class": self.positive_class,
            "label": self.label,
            "event_id": self.event_id,
        }
        # only when set: schemas (and the reference versions hashed from them) of
        # models without PII stay byte for byte what they were
        if self.pii:
            out["pii"] = self.pii
        return out

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
            pii=dict(data.get("pii") or {}),
        )


def category_text(value: object) -> str:
    """A category as text, the same for a reference cell and an event's value: an
    integral float loses its ".0" (a CSV column of codes with gaps reads as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pii_token(value: object, key: bytes) -> str:
    """The pseudonym of a `pii: hash` value: keyed (HMAC-SHA256), so that without the
    key nobody can test guesses against stored tokens; deterministic, so that the
    category distribution, and its drift, survive."""
    digest = hmac.digest(key, category_text(value).encode(), "sha256")
    return digest.hex()[:TOKEN_HEX_DIGITS]
