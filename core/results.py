"""RunResult: the stable JSON of one detection run. Add fields, never rename."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatus = Literal["ok", "insufficient_data", "error"]


class WindowInfo(BaseModel):
    start: str | None = None
    end: str | None = None
    events: int = 0


class ColumnResult(BaseModel):
    kind: str
    method: str | None = None
    method_name: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    missing_share: float = 0.0
    reference_size: int = 0
    current_size: int = 0
    effect_size: float | None = None
    effect_size_floor: float | None = None
    status: Literal["ok", "insufficient_data", "error"] = "ok"
    note: str | None = None


class RunResult(BaseModel):
    run_id: str
    model: str
    status: RunStatus
    trigger: Literal["schedule", "manual"] = "manual"
    started_at: str
    duration_seconds: float = 0.0
    reference_version: str | None = None
    window: WindowInfo = Field(default_factory=WindowInfo)
    min_window_events: int = 0
    dataset_drift: bool | None = None
    # consecutive ok runs, this one included, that found dataset drift
    dataset_drift_streak: int = 0
    drifted_share: float | None = None
    drift_share_threshold: float | None = None
    columns: dict[str, ColumnResult] = Field(default_factory=dict)
    prediction: dict[str, Any] = Field(default_factory=dict)
    performance: dict[str, Any] = Field(default_factory=dict)
    data_quality: dict[str, Any] = Field(default_factory=dict)
    multivariate: dict[str, Any] = Field(default_factory=dict)
    kpis: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
