"""Errors that cross layers: raised in collectors and detectors, answered by routes."""

from __future__ import annotations


class UnknownModelError(LookupError):
    """The model has no reference (or a named run or reference version is missing)."""

    def __init__(self, model: str, what: str | None = None) -> None:
        super().__init__(what or f"model {model!r} is unknown; upload its reference first")
        self.model = model


class ReportUnavailableError(LookupError):
    """The run exists but no report can be built for it."""
