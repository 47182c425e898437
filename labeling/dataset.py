"""The consensus-labeled set as a versioned dataset, pure: a Parquet file of the done tasks
with their final labels, and a manifest with the lineage (model, reference version, time
range, flag reasons, label counts) that says which production samples went into which
retraining.

The dataset's version is its content hash: sha256 of the rows in canonical JSON (column
names and types, then the rows sorted by event id), so the same content gives the same
hash whatever the order of the tasks, the time of the export or the pyarrow release. The
Parquet bytes are deterministic too for one pyarrow release (no creation time is written),
and `content_hash` recomputes the hash from a file, to check it against its manifest.

Columns: the features under their own names, the model's prediction and the final label
under the reference's prediction and label names (or `__prediction` and `__label`), the
event id under the reference's event id name (or `__event_id`), and, with internal names
no feature can collide with, `__timestamp` (unix seconds), `__reasons`, `__agreement`,
`__annotations`, `__model_version` and `__task_id`.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from core.labeling import LabelTask
from core.schema import ColumnKind, ModelSchema
from labeling.dataset_rows import (
    MODEL_VERSION,
    REASONS,
    TIMESTAMP,
    arrow_schema,
    column_names,
    dataset_rows,
    target_kind,
)

HASH_PREFIX = "sha256:"


class TimeRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float  # unix seconds, the earliest sample's
    end: float  # the latest sample's


class Manifest(BaseModel):
    """What a dataset holds and where it came from. Everything but `created_at` and
    `parquet_sha256` follows from the content."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    content_hash: str  # "sha256:<hex>" of the canonical rows: the dataset's version
    rows: int
    columns: dict[str, str]  # name -> Arrow type
    model: str
    model_versions: list[str]  # the versions that made the predictions, sorted
    reference_version: str
    label_column: str
    prediction_column: str
    event_id_column: str
    label_kind: ColumnKind
    time_range: TimeRange | None  # None for an empty dataset
    reasons: dict[str, int]  # rows flagged for each reason (a row may have several)
    labels: dict[str, int]  # rows per final label (classification; empty for regression)
    errors: int  # rows whose final label differs from the model's prediction
    errors_only: bool  # the hard cases alone
    parquet_sha256: str  # of the file's bytes: one pyarrow release writes the same bytes
    created_at: float


@dataclass(frozen=True)
class Dataset:
    parquet: bytes
    manifest: Manifest


def type_name(arrow_type: pa.DataType) -> str:
    """An Arrow type by its kind alone (a list's child field name is a writer's choice)."""
    if pa.types.is_list(arrow_type):
        return f"list<{type_name(arrow_type.value_type)}>"
    return str(arrow_type)


def canonical_json(table: pa.Table) -> bytes:
    """The content as canonical JSON: the columns (name, type), then every row's values
    in column order; rows are in the table's order (sorted by event id when built here)."""
    names = table.schema.names
    columns = [[field.name, type_name(field.type)] for field in table.schema]
    rows = [[row[name] for name in names] for row in table.to_pylist()]
    # orjson writes a float the shortest way that reads back the same: deterministic
    return orjson.dumps({"columns": columns, "rows": rows})


def content_hash(data: pa.Table | bytes) -> str:
    """The dataset's version: "sha256:<hex>" of its canonical JSON, from the table or from
    the Parquet file's bytes (to check a file against its manifest)."""
    table = pq.read_table(io.BytesIO(data)) if isinstance(data, bytes) else data
    if isinstance(data, bytes):  # the file's key-value metadata is no part of the content
        table = table.replace_schema_metadata(None)
    return HASH_PREFIX + hashlib.sha256(canonical_json(table)).hexdigest()


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    # no creation time goes into a Parquet file: only the schema, the data, statistics and
    # `created_by` (the writer's release), so the same table gives the same bytes
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def build_dataset(
    tasks: Sequence[LabelTask],
    schema: ModelSchema,
    model: str,
    reference_version: str,
    errors_only: bool = False,
    created_at: float | None = None,
) -> Dataset:
    """The done tasks with a final label as a versioned dataset; with `errors_only`, the
    hard cases alone: the rows whose final label differs from the model's prediction."""
    rows, errors = dataset_rows(tasks, schema, model, errors_only)
    fields = arrow_schema(schema)
    table = pa.Table.from_pylist(rows, schema=fields)
    digest = content_hash(table)
    # the file names its content and lineage too, should it travel without its manifest
    table = table.replace_schema_metadata(
        {
            "driftmon.content_hash": digest,
            "driftmon.model": model,
            "driftmon.reference_version": reference_version,
        }
    )
    parquet = _parquet(table)
    manifest = _manifest(
        rows,
        fields,
        schema,
        model,
        reference_version,
        digest=digest,
        parquet=parquet,
        errors=errors,
        errors_only=errors_only,
        created_at=time.time() if created_at is None else created_at,
    )
    return Dataset(parquet=parquet, manifest=manifest)


def _manifest(
    rows: Sequence[dict[str, Any]],
    fields: pa.Schema,
    schema: ModelSchema,
    model: str,
    reference_version: str,
    *,
    digest: str,
    parquet: bytes,
    errors: int,
    errors_only: bool,
    created_at: float,
) -> Manifest:
    prediction, label, event_id = column_names(schema)
    timestamps = [row[TIMESTAMP] for row in rows]
    reasons = Counter(reason for row in rows for reason in row[REASONS])
    labels = (
        Counter(row[label] for row in rows) if target_kind(schema) == "categorical" else Counter()
    )
    versions = {row[MODEL_VERSION] for row in rows if row[MODEL_VERSION] is not None}
    return Manifest(
        content_hash=digest,
        rows=len(rows),
        columns={field.name: type_name(field.type) for field in fields},
        model=model,
        model_versions=sorted(versions),
        reference_version=reference_version,
        label_column=label,
        prediction_column=prediction,
        event_id_column=event_id,
        label_kind=target_kind(schema),
        time_range=TimeRange(start=min(timestamps), end=max(timestamps)) if rows else None,
        reasons=dict(sorted(reasons.items())),
        labels=dict(sorted(labels.items())),
        errors=errors,
        errors_only=errors_only,
        parquet_sha256=HASH_PREFIX + hashlib.sha256(parquet).hexdigest(),
        created_at=created_at,
    )
