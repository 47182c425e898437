"""Inference payloads to rows of features and predictions.

KServe V1 ({"instances"} / {"predictions"}), the Open Inference Protocol v2
({"inputs"} / {"outputs"} tensors) and Seldon's protocol ({"data": {"names",
"ndarray" | "tensor"}}, {"jsonData"}). Features are named by tensor or column name
when those match the model's schema, else by position in the schema's feature order
(or the model's configured `input_names`).

Model servers' loggers forward whatever the client sent, so every shape is checked
here: a payload that is not what its protocol says raises CloudEventError naming the
field (`data.outputs[1].shape`), never a 500 from deep in a reshape."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collectors.cloudevents import CloudEventError

# more dimensions than any tabular model's tensors; bounds the nesting of rows built here
MAX_DIMENSIONS = 8


@dataclass
class Prediction:
    value: object = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Tensor:
    """A v2 or Seldon tensor, checked: `values` are flat, in row-major order."""

    name: str
    shape: list[int]
    values: list[Any]
    where: str

    @property
    def rows(self) -> list[Any]:
        """The tensor split along its first dimension (a 0-d tensor is one row)."""
        if not self.shape:
            return list(self.values)
        return _nest(self.values, self.shape)


def _nest(values: list[Any], shape: list[int]) -> list[Any]:
    if len(shape) <= 1:
        return values
    step = len(values) // shape[0] if shape[0] else 0
    return [_nest(values[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CloudEventError(where, "must be a JSON array")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CloudEventError(where, "must be a JSON object")
    return value


def _flatten(data: list[Any], where: str) -> list[Any]:
    """Tensor data, flat or as nested row-major arrays (both are sent), flattened
    without recursion: nesting is as deep as the JSON parser allows."""
    flat: list[Any] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            raise CloudEventError(where, "tensor data holds numbers, strings or booleans")
        else:
            flat.append(item)
    return flat


def _shape(raw: Any, size: int, where: str) -> list[int]:
    if raw is None:
        return [size]
    shape = _array(raw, where)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise CloudEventError(where, "must be an array of non-negative integers")
    if len(shape) > MAX_DIMENSIONS:
        raise CloudEventError(where, f"more than {MAX_DIMENSIONS} dimensions")
    if math.prod(shape) != size:
        raise CloudEventError(where, f"{shape} holds {math.prod(shape)} values, data has {size}")
    return shape


def _tensor(raw: Any, where: str, data_key: str = "data") -> Tensor:
    tensor = _object(raw, where)
    name = tensor.get("name")
    values = _flatten(_array(tensor.get(data_key), f"{where}.{data_key}"), f"{where}.{data_key}")
    shape = _shape(tensor.get("shape"), len(values), f"{where}.shape")
    return Tensor("" if name is None else str(name), shape, values, where)


def _rows_from_matrix(
    values: list[Any], names: list[str] | None, order: list[str], where: str
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in values:
        if isinstance(row, dict):
            rows.append(dict(row))
            continue
        items = row if isinstance(row, list) else [row]
        columns = names or order
        if len(items) > len(columns):
            raise CloudEventError(where, f"{len(items)} values but {len(columns)} feature names")
        rows.append(dict(zip(columns, items, strict=False)))
    return rows


def _v2_inputs(raw: Any, order: list[str]) -> list[dict[str, Any]]:
    inputs = _array(raw, "data.inputs")
    if not inputs:
        raise CloudEventError("data.inputs", "holds no tensor")
    tensors = [_tensor(tensor, f"data.inputs[{i}]") for i, tensor in enumerate(inputs)]
    if len(tensors) > 1 or tensors[0].name in order:
        return _feature_columns(tensors)
    matrix = tensors[0]
    if len(matrix.shape) > 2:
        raise CloudEventError(f"{matrix.where}.shape", "is [features] or [instances, features]")
    rows = [matrix.values] if len(matrix.shape) < 2 else matrix.rows
    return _rows_from_matrix(rows, None, order, f"{matrix.where}.shape")


def _feature_columns(tensors: list[Tensor]) -> list[dict[str, Any]]:
    """One tensor per feature, each [n] or [n, 1], all of the same n."""
    for tensor in tensors:
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise CloudEventError(f"{tensor.where}.shape", "a tensor per feature is [n] or [n, 1]")
    counts = {len(tensor.values) for tensor in tensors}
    if len(counts) > 1:
        raise CloudEventError("data.inputs", f"tensors of different lengths {sorted(counts)}")
    columns = {tensor.name: tensor.values for tensor in tensors}
    count = counts.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _seldon_matrix(raw: Any, where: str) -> tuple[list[Any], list[str] | None]:
    data = _object(raw, where)
    names = data.get("names") or None
    if names is not None and not all(isinstance(n, str) for n in _array(names, f"{where}.names")):
        raise CloudEventError(f"{where}.names", "must be an array of strings")
    if "ndarray" in data:
        return _array(data["ndarray"], f"{where}.ndarray"), names
    if "tensor" in data:
        return _tensor(data["tensor"], f"{where}.tensor", data_key="values").rows, names
    raise CloudEventError(where, "Seldon data needs `ndarray` or `tensor`")


def request_rows(payload: Any, order: list[str]) -> list[dict[str, Any]]:
    """Feature rows of an inference request, in instance order."""
    if not isinstance(payload, dict):
        raise CloudEventError("data", "an inference request is a JSON object")
    if "instances" in payload:
        instances = _array(payload["instances"], "data.instances")
        return _rows_from_matrix(instances, None, order, "data.instances")
    if "inputs" in payload:
        return _v2_inputs(payload["inputs"], order)
    if isinstance(payload.get("data"), dict):
        matrix, names = _seldon_matrix(payload["data"], "data.data")
        return _rows_from_matrix(matrix, names, order, "data.data")
    if isinstance(payload.get("jsonData"), dict):
        return [dict(payload["jsonData"])]
    raise CloudEventError("data", "expected `instances`, `inputs`, `data` or `jsonData`")


def _prediction_of(value: Any, where: str, classes: list[str] | None = None) -> Prediction:
    """A scalar is the prediction; a vector of probabilities gives scores and argmax."""
    if isinstance(value, dict):
        scores = {str(k): float(v) for k, v in value.items() if _is_number(v)}
        return Prediction(max(scores, key=lambda k: scores[k]) if scores else None, scores)
    if not isinstance(value, list):
        return Prediction(value)
    if len(value) == 1 and not isinstance(value[0], list | dict):
        return Prediction(value[0])
    if not value or not all(_is_number(v) for v in value):
        raise CloudEventError(where, "a prediction's class probabilities are numbers")
    if classes is not None and len(classes) != len(value):
        raise CloudEventError(where, f"{len(value)} probabilities but {len(classes)} classes")
    labels = classes or [str(i) for i in range(len(value))]
    scores = {labels[i]: float(v) for i, v in enumerate(value)}
    return Prediction(max(scores, key=lambda k: scores[k]), scores)


def _v2_outputs(raw: Any) -> list[Prediction]:
    """A label tensor (or one of probabilities under another name: sklearn's server
    names predict_proba's output `predict`) and a tensor named *proba*, either or both."""
    outputs = _array(raw, "data.outputs")
    if not outputs:
        raise CloudEventError("data.outputs", "holds no tensor")
    tensors = [_tensor(tensor, f"data.outputs[{i}]") for i, tensor in enumerate(outputs)]
    proba = next((t for t in tensors if "proba" in t.name.lower()), None)
    label = next((t for t in tensors if "proba" not in t.name.lower()), None)
    probas = [_scores_of(row, proba.where) for row in proba.rows] if proba else []
    if label is None:
        return [Prediction(max(s, key=lambda k: s[k]) if s else None, s) for s in probas]
    predictions = [_prediction_of(row, f"{label.where}.data") for row in label.rows]
    if proba is not None and len(probas) != len(predictions):
        raise CloudEventError("data.outputs", f"{len(predictions)} labels but {len(probas)} rows")
    for prediction, scores in zip(predictions, probas, strict=False):
        prediction.scores = scores
    return predictions


def _scores_of(row: Any, where: str) -> dict[str, float]:
    values = row if isinstance(row, list) else [row]
    if not all(_is_number(v) for v in values):
        raise CloudEventError(f"{where}.data", "probabilities are numbers")
    return {str(j): float(p) for j, p in enumerate(values)}


def response_predictions(payload: Any) -> list[Prediction]:
    """One Prediction per instance of an inference response."""
    if not isinstance(payload, dict):
        raise CloudEventError("data", "an inference response is a JSON object")
    if "predictions" in payload:
        predictions = _array(payload["predictions"], "data.predictions")
        return [_prediction_of(v, f"data.predictions[{i}]") for i, v in enumerate(predictions)]
    if "outputs" in payload:
        return _v2_outputs(payload["outputs"])
    if isinstance(payload.get("data"), dict):
        matrix, names = _seldon_matrix(payload["data"], "data.data")
        return [_prediction_of(row, f"data.data[{i}]", names) for i, row in enumerate(matrix)]
    if "jsonData" in payload:
        return [_prediction_of(payload["jsonData"], "data.jsonData")]
    raise CloudEventError("data", "expected `predictions`, `outputs`, `data` or `jsonData`")


def feedback_truth(payload: Any) -> tuple[str | None, list[object]]:
    """(the request's id, ground-truth values) of a Seldon feedback payload."""
    if not isinstance(payload, dict) or "truth" not in payload:
        raise CloudEventError("data", "Seldon feedback needs `truth`")
    truth = payload["truth"]
    values: list[object]
    if isinstance(truth, dict) and isinstance(truth.get("data"), dict):
        matrix, _ = _seldon_matrix(truth["data"], "data.truth.data")
        values = [row[0] if isinstance(row, list) and len(row) == 1 else row for row in matrix]
    elif isinstance(truth, dict) and "jsonData" in truth:
        values = [truth["jsonData"]]
    else:
        values = truth if isinstance(truth, list) else [truth]
    response = payload.get("response")
    meta = response.get("meta") if isinstance(response, dict) else None
    puid = meta.get("puid") if isinstance(meta, dict) else None
    return (str(puid) if isinstance(puid, str | int) and puid != "" else None), values
