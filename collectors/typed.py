"""The fastest path of validation: JSON documents parsed straight into typed records.

msgspec checks each value's JSON type while it parses, in C, against record types
built from the model's schema, so a plainly valid document costs less than parsing it
into dicts would. Whatever it refuses, an invalid record or an unusual but valid one
(integer event ids, category codes as numbers, a missing event id), makes it return
None, and the caller parses the documents into dicts and takes the columnar
and per-record paths, which name the field of each error. Every path produces the
same bytes for the same valid input (tested). Texts over the length limit fail the
record types themselves (msgspec checks lengths while it parses): refused here, named
there."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

from collectors.columnar import (
    CarefulPathError,
    event_id_column,
    require,
    require_short,
    score_column,
    timestamp_column,
)
from collectors.events import DEFAULT_LIMITS, RecordError, RecordLimits
from core.blocks import EncodedBatch, Layout, encode_rows
from core.schema import ModelSchema

REFUSED = (CarefulPathError, RecordError, ValueError, TypeError)  # parsing refusals: `records`


class TypedDecoder:
    """Record types for one schema; building them costs about a millisecond, so the
    caller keeps one per schema."""

    def __init__(
        self, schema: ModelSchema, layout: Layout, limits: RecordLimits = DEFAULT_LIMITS
    ) -> None:
        self._schema = schema
        self._layout = layout
        self._limits = limits
        record = _record_type(schema, layout, limits.max_value_length)
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(record)
        self._many: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[record])  # type: ignore[valid-type]

    def records(self, document: bytes, many: bool) -> list[Any] | None:
        """The typed records of one document, or None when it needs the careful paths."""
        try:
            return self._many.decode(document) if many else [self._one.decode(document)]
        except msgspec.DecodeError:
            return None

    def encode_records(self, records: list[Any], model: str, now: float) -> EncodedBatch | None:
        """Typed records checked across records and encoded; None when any of them needs
        the careful paths."""
        try:
            require(bool(records))
            return self._encode(records, model, now)
        except REFUSED:
            return None

    def _encode(self, records: list[Any], model: str, now: float) -> EncodedBatch:
        """The record types already hold every value to its JSON type (and JSON has no
        infinities): what is left to check spans records, or is about text."""
        require({record.model for record in records} <= {None, model})
        longest = self._limits.max_value_length
        event_ids = event_id_column([record.event_id for record in records], longest)
        values = list(map(msgspec.structs.astuple, [record.features for record in records]))
        width = len(self._layout.numerical)
        numbers = np.array([row[:width] for row in values], dtype="float64")
        rows = encode_rows(
            event_ids,
            timestamp_column([record.timestamp for record in records], now, self._limits),
            [record.model_version for record in records],
            self._targets([record.prediction for record in records]),
            self._scores(records),
            self._targets([record.label for record in records]),
            [row[width:] for row in values],
        )
        return EncodedBatch(self._layout, event_ids, rows, numbers.reshape(len(records), width))

    def _targets(self, values: list[Any]) -> list[Any]:
        if self._schema.prediction_kind == "numerical":
            return values
        texts = [str(value) if type(value) is int else value for value in values]
        require_short(texts, self._limits.max_value_length)  # class ids given as integers
        return texts

    def _scores(self, records: list[Any]) -> list[dict[str, float] | None]:
        maps = [record.scores for record in records]
        if maps.count(None) == len(maps):
            positive = self._schema.positive_class or "1"
            singles = [record.score for record in records]
            return [None if value is None else {positive: value} for value in singles]
        singles = [record.score for record in records]
        return score_column(maps, singles, self._schema, self._limits.max_value_length)


def _record_type(schema: ModelSchema, layout: Layout, longest: int) -> type:
    """A record as intake takes it, with the features in layout order (numbers first)
    under Python-safe attribute names; unknown features are refused, unknown record
    fields ignored, as on the careful path."""
    text: Any = Annotated[str, msgspec.Meta(max_length=longest)]
    names = [*layout.numerical, *layout.categorical]
    kinds: list[Any] = [float | None] * len(layout.numerical)
    kinds += [text | None] * len(layout.categorical)
    features = msgspec.defstruct(
        "Features",
        [(f"f{i}", kind, None) for i, kind in enumerate(kinds)],
        rename={f"f{i}": name for i, name in enumerate(names)},
        forbid_unknown_fields=True,
        gc=False,
    )
    target: Any = float | None if schema.prediction_kind == "numerical" else text | int | None
    return msgspec.defstruct(
        "Record",
        [
            ("event_id", text),
            ("features", features),
            ("model", str | None, None),
            ("timestamp", float | str | None, None),
            ("model_version", text | None, None),
            ("prediction", target, None),
            ("score", float | None, None),
            ("scores", dict[text, float | None] | None, None),
            ("label", target, None),
        ],
        gc=False,
    )
