"""Training references: parse an upload, assign roles, infer column kinds the way
Evidently would (but explicitly, and reported back), canonicalize and version."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import orjson
import pandas as pd

from core.schema import ColumnKind, ModelSchema

PARQUET_MAGIC = b"PAR1"
# an integer-valued prediction with at most this many classes is a classifier's
MAX_CLASSES = 20


class ReferenceError(ValueError):
    """The upload cannot be a reference; `field` names the query parameter or column."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class ReferenceRoles:
    prediction: str | None = None
    scores: str | None = None  # "proba" or "p0:0,p1:1"
    label: str | None = None
    event_id: str | None = None
    positive_class: str | None = None
    categorical: list[str] = field(default_factory=list)
    numerical: list[str] = field(default_factory=list)


@dataclass
class PreparedReference:
    frame: pd.DataFrame
    schema: ModelSchema
    version: str
    ignored: dict[str, str]

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_table(body: bytes) -> pd.DataFrame:
    if not body.strip():
        raise ReferenceError("body", "empty; send CSV or Parquet")
    try:
        if body[:4] == PARQUET_MAGIC:
            return pd.read_parquet(io.BytesIO(body))
        return pd.read_csv(io.BytesIO(body), float_precision="round_trip")
    except Exception as exc:  # pandas raises many types for malformed files
        raise ReferenceError("body", f"not readable as CSV or Parquet ({exc})") from exc


def _require(frame: pd.DataFrame, param: str, column: str | None) -> None:
    if column is not None and column not in frame.columns:
        raise ReferenceError(param, f"column {column!r} is not in the reference")


def _score_columns(spec: str | None, frame: pd.DataFrame, positive: str) -> dict[str, str]:
    if not spec:
        return {}
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if len(parts) == 1 and ":" not in parts[0]:
        _require(frame, "scores", parts[0])
        return {positive: parts[0]}
    mapping: dict[str, str] = {}
    for part in parts:
        column, sep, cls = part.rpartition(":")
        if not sep or not column or not cls:
            raise ReferenceError("scores", f"{part!r}: name several as column:class pairs")
        _require(frame, "scores", column)
        mapping[cls] = column
    return mapping


def _is_class_like(series: pd.Series) -> bool:
    values = series.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    return bool((values == values.round()).all()) and values.nunique() <= MAX_CLASSES


def infer_kind(series: pd.Series) -> ColumnKind | None:
    """numerical, categorical, or None for columns drift cannot use (datetimes)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return None
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numerical"
    return "categorical"


def _explicit_kinds(frame: pd.DataFrame, roles: ReferenceRoles) -> dict[str, ColumnKind]:
    kinds: dict[str, ColumnKind] = {}
    for param, names, kind in (
        ("categorical", roles.categorical, "categorical"),
        ("numerical", roles.numerical, "numerical"),
    ):
        for name in names:
            _require(frame, param, name)
            if name in kinds:
                raise ReferenceError(param, f"{name!r} is named both categorical and numerical")
            kinds[name] = kind  # type: ignore[assignment]
    return kinds


def _canonical(series: pd.Series, kind: ColumnKind, column: str) -> pd.Series:
    if kind == "numerical":
        numbers = pd.to_numeric(series, errors="coerce")
        if numbers.isna().sum() > series.isna().sum():
            raise ReferenceError(column, "declared numerical but holds non-numeric values")
        return numbers.astype("float64")
    return series.map(_category_text, na_action="ignore").astype("object")


def _category_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _target_kind(
    frame: pd.DataFrame, column: str | None, explicit: dict[str, ColumnKind]
) -> ColumnKind | None:
    if column is None:
        return None
    return explicit.get(column) or ("categorical" if _is_class_like(frame[column]) else "numerical")


def _version(frame: pd.DataFrame, schema: ModelSchema) -> str:
    digest = hashlib.sha256(orjson.dumps(schema.to_dict(), option=orjson.OPT_SORT_KEYS))
    for column in frame.columns:
        digest.update(column.encode())
        digest.update(pd.util.hash_pandas_object(frame[column], index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def prepare_reference(body: bytes, roles: ReferenceRoles) -> PreparedReference:
    frame = read_table(body)
    if frame.empty:
        raise ReferenceError("body", "the reference has no rows")
    frame.columns = [str(column) for column in frame.columns]
    for param in ("prediction", "label", "event_id"):
        _require(frame, param, getattr(roles, param))
    explicit = _explicit_kinds(frame, roles)
    prediction_kind = _target_kind(frame, roles.prediction, explicit)
    positive = roles.positive_class or _default_positive(frame, roles.prediction or roles.label)
    scores = _score_columns(roles.scores, frame, positive)
    role_columns = {roles.prediction, roles.label, roles.event_id, *scores.values()} - {None}
    features: dict[str, ColumnKind] = {}
    ignored: dict[str, str] = {}
    for column in frame.columns:
        if column in role_columns:
            continue
        kind = explicit.get(column) or infer_kind(frame[column])
        if kind is None:
            ignored[column] = "datetime columns are not compared"
        else:
            features[column] = kind
    if not features:
        raise ReferenceError("body", "no feature columns left after the roles")
    schema = ModelSchema(
        features=features,
        prediction=roles.prediction,
        prediction_kind=prediction_kind,
        scores=scores,
        positive_class=positive if scores else roles.positive_class,
        label=roles.label,
        event_id=roles.event_id,
    )
    canonical = _canonical_frame(frame, schema)
    return PreparedReference(canonical, schema, _version(canonical, schema), ignored)


def _default_positive(frame: pd.DataFrame, target: str | None) -> str:
    """The larger class label, as DESIGN.md promises; "1" without a target column."""
    if target is None:
        return "1"
    classes = sorted(frame[target].dropna().unique().tolist())
    return _category_text(classes[-1]) if classes else "1"


def _canonical_frame(frame: pd.DataFrame, schema: ModelSchema) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for name, kind in schema.features.items():
        columns[name] = _canonical(frame[name], kind, name)
    for target in (schema.prediction, schema.label):
        if target is not None:
            columns[target] = _canonical(
                frame[target], schema.prediction_kind or "categorical", target
            )
    for column in schema.scores.values():
        columns[column] = _canonical(frame[column], "numerical", column)
    if schema.event_id is not None:
        columns[schema.event_id] = frame[schema.event_id].astype(str)
    ordered = sorted(columns)
    return pd.DataFrame({name: columns[name].reset_index(drop=True) for name in ordered})


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
