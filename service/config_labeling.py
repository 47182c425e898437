"""The labeling settings of `Settings` (README "Labeling loop"): what a model without a
`labeling:` section in the models YAML gets."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from core.labeling import LabelingConfig


class LabelingSettings(BaseSettings):
    labeling: LabelingConfig = Field(
        default_factory=LabelingConfig,
        description="JSON of the labeling defaults (the keys of a model's `labeling:`): "
        "which samples runs flag, how many annotations a task needs, the queue's bound",
    )
