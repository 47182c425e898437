"""Training references: parse an upload, assign roles, infer column kinds the way
Evidently would (but explicitly, and reported back), canonicalize and version."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

import orjson
import pandas as pd
import pyarrow.parquet as pq

from core.schema import ColumnKind, ModelSchema, PiiAction, category_text, pii_token

PARQUET_MAGIC = b"PAR1"
# an integer-valued prediction with at most this many classes is a classifier's
MAX_CLASSES = 20


class ReferenceError(ValueError):
    """The upload cannot be a reference; `field` names the query parameter or column."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class ReferenceTooWideError(ReferenceError):
    """More columns than the cap: comparing each costs detection time at every run."""

    def __init__(self, columns: int, cap: int) -> None:
        super().__init__(
            "body", f"{columns} columns besides the role and `pii: drop` ones; the cap is {cap}"
        )
        self.columns = columns
        self.cap = cap


@dataclass
class ReferenceRoles:
    prediction: str | None = None
    scores: str | None = None  # "proba" or "p0:0,p1:1"
    label: str | None = None
    event_id: str | None = None
    positive_class: str | None = None
    categorical: list[str] = field(default_factory=list)
    numerical: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReferencePolicy:
    """What the models file and the settings ask of an upload."""

    pii: dict[str, PiiAction] = field(default_factory=dict)
    pii_key: bytes | None = field(default=None, repr=False)
    max_columns: int | None = None

    @property
    def dropped(self) -> set[str]:
        return {name for name, action in self.pii.items() if action == "drop"}


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


def header_names(body: bytes) -> list[str] | None:
    """The column names alone, from a Parquet footer or a CSV's first line, so that a
    too wide upload is refused before it is parsed (pandas reads a wide CSV's header
    for seconds); None when they cannot be read so cheaply."""
    try:
        if body[:4] == PARQUET_MAGIC:
            schema = pq.read_schema(io.BytesIO(body))
            index = (schema.pandas_metadata or {}).get("index_columns", [])
            return [name for name in schema.names if name not in index]
        end = body.find(b"\n")
        line = body if end < 0 else body[:end]
        if line.count(b'"') % 2:  # a quoted name holds a line break
            return None
        return next(csv.reader([line.decode("utf-8-sig").rstrip("\r")]))
    except Exception:  # unreadable: parsing the whole body says why
        return None


def _role_names(roles: ReferenceRoles) -> set[str]:
    names = {roles.prediction, roles.label, roles.event_id}
    for part in (roles.scores or "").split(","):
        column, sep, _ = part.strip().rpartition(":")
        names.add(column if sep else part.strip())
    return {name for name in names if name}


def _check_width(names: Iterable[str], roles: ReferenceRoles, policy: ReferencePolicy) -> None:
    if policy.max_columns is None:
        return
    width = len(set(names) - _role_names(roles) - policy.dropped)
    if width > policy.max_columns:
        raise ReferenceTooWideError(width, policy.max_columns)


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
    return series.map(category_text, na_action="ignore").astype("object")


def _pseudonymised(series: pd.Series, key: bytes | None, column: str) -> pd.Series:
    """A `pii: hash` column's tokens, computed from its category texts as intake does
    from events' values, so that the same value gives the same token on both sides."""
    if key is None:
        raise ReferenceError(column, "is `pii: hash` but no pii_hmac_key is set")
    return series.map(partial(pii_token, key=key), na_action="ignore").astype("object")


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


def prepare_reference(
    body: bytes, roles: ReferenceRoles, policy: ReferencePolicy | None = None
) -> PreparedReference:
    """The upload parsed, its roles and kinds assigned, PII hashed or dropped before
    anything else sees it, canonicalized and versioned."""
    policy = policy or ReferencePolicy()
    pii_roles = _role_names(roles) & policy.pii.keys()
    if pii_roles:
        raise ReferenceError("pii", f"{sorted(pii_roles)} are roles; only features can be PII")
    _check_width(header_names(body) or [], roles, policy)  # before parsing, when it can
    frame = read_table(body)
    if frame.empty:
        raise ReferenceError("body", "the reference has no rows")
    frame.columns = [str(column) for column in frame.columns]
    dropped = [column for column in frame.columns if column in policy.dropped]
    frame = frame.drop(columns=dropped)
    _check_width(frame.columns, roles, policy)
    schema, ignored = _schema(frame, roles, policy.pii)
    ignored.update(dict.fromkeys(dropped, "pii: drop; never stored"))
    canonical = _canonical_frame(frame, schema, policy.pii_key)
    return PreparedReference(canonical, schema, _version(canonical, schema), ignored)


def _schema(
    frame: pd.DataFrame, roles: ReferenceRoles, pii: dict[str, PiiAction]
) -> tuple[ModelSchema, dict[str, str]]:
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
        # a hashed column holds tokens: categories, whatever its values were
        hashed: ColumnKind | None = "categorical" if pii.get(column) == "hash" else None
        kind = hashed or explicit.get(column) or infer_kind(frame[column])
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
        pii=dict(pii),
    )
    return schema, ignored


def _default_positive(frame: pd.DataFrame, target: str | None) -> str:
    """The larger class label, as DESIGN.md promises; "1" without a target column."""
    if target is None:
        return "1"
    classes = sorted(frame[target].dropna().unique().tolist())
    return category_text(classes[-1]) if classes else "1"


def _canonical_frame(frame: pd.DataFrame, schema: ModelSchema, key: bytes | None) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for name, kind in schema.features.items():
        columns[name] = _canonical(frame[name], kind, name)
        if schema.pii.get(name) == "hash":
            columns[name] = _pseudonymised(columns[name], key, name)
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
