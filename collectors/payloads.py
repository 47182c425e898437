"""Inference payloads to rows of features and predictions.

KServe V1 ({"instances"} / {"predictions"}), the Open Inference Protocol v2
({"inputs"} / {"outputs"} tensors) and Seldon's protocol ({"data": {"names",
"ndarray" | "tensor"}}, {"jsonData"}). Features are named by tensor or column name
when those match the model's schema, else by position in the schema's feature order
(or the model's configured `input_names`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectors.cloudevents import CloudEventError


@dataclass
class Prediction:
    value: object = None
    scores: dict[str, float] = field(default_factory=dict)


def _rows_from_matrix(
    values: Any, names: list[str] | None, order: list[str]
) -> list[dict[str, Any]]:
    matrix = values if isinstance(values, list) else [values]
    rows: list[dict[str, Any]] = []
    for row in matrix:
        if isinstance(row, dict):
            rows.append(dict(row))
            continue
        items = row if isinstance(row, list) else [row]
        columns = names or order
        if len(items) > len(columns):
            raise CloudEventError("data", f"{len(items)} values but {len(columns)} feature names")
        rows.append(dict(zip(columns, items, strict=False)))
    return rows


def _v2_tensor(tensor: dict[str, Any]) -> np.ndarray:
    shape = tensor.get("shape") or [len(tensor.get("data") or [])]
    data = np.asarray(tensor.get("data"), dtype=object).reshape(-1)
    return data.reshape([int(size) for size in shape]) if data.size else data


def _v2_inputs(inputs: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    names = [str(tensor.get("name")) for tensor in inputs]
    if len(inputs) > 1 or names[0] in order:
        # one tensor per feature, each [n] or [n, 1]
        columns = {
            name: _v2_tensor(tensor).reshape(-1).tolist()
            for name, tensor in zip(names, inputs, strict=True)
        }
        count = len(next(iter(columns.values())))
        return [{name: values[i] for name, values in columns.items()} for i in range(count)]
    matrix = _v2_tensor(inputs[0])
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    return _rows_from_matrix(matrix.tolist(), None, order)


def _seldon_matrix(data: dict[str, Any]) -> tuple[list[Any], list[str] | None]:
    names = data.get("names") or None
    if "ndarray" in data:
        return list(data["ndarray"]), names
    if "tensor" in data:
        tensor = data["tensor"]
        shape = [int(size) for size in tensor.get("shape", [])]
        values = np.asarray(tensor.get("values", []), dtype=object)
        return values.reshape(shape).tolist() if shape else values.tolist(), names
    raise CloudEventError("data", "Seldon data needs `ndarray` or `tensor`")


def request_rows(payload: Any, order: list[str]) -> list[dict[str, Any]]:
    """Feature rows of an inference request, in instance order."""
    if not isinstance(payload, dict):
        raise CloudEventError("data", "an inference request is a JSON object")
    if "instances" in payload:
        return _rows_from_matrix(payload["instances"], None, order)
    if "inputs" in payload and isinstance(payload["inputs"], list) and payload["inputs"]:
        return _v2_inputs(payload["inputs"], order)
    if isinstance(payload.get("data"), dict):
        matrix, names = _seldon_matrix(payload["data"])
        return _rows_from_matrix(matrix, names, order)
    if isinstance(payload.get("jsonData"), dict):
        return [dict(payload["jsonData"])]
    raise CloudEventError("data", "expected `instances`, `inputs`, `data` or `jsonData`")


def _prediction_of(value: Any, classes: list[str] | None = None) -> Prediction:
    """A scalar is the prediction; a vector of probabilities gives scores and argmax."""
    if isinstance(value, dict):
        scores = {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}
        return Prediction(max(scores, key=lambda k: scores[k]) if scores else None, scores)
    if isinstance(value, list):
        if len(value) == 1 and not isinstance(value[0], list):
            return Prediction(value[0])
        labels = classes or [str(i) for i in range(len(value))]
        scores = {labels[i]: float(v) for i, v in enumerate(value)}
        return Prediction(max(scores, key=lambda k: scores[k]), scores)
    return Prediction(value)


def _v2_outputs(outputs: list[dict[str, Any]]) -> list[Prediction]:
    by_name = {str(tensor.get("name")): _v2_tensor(tensor) for tensor in outputs}
    proba = next((t for name, t in by_name.items() if "proba" in name.lower()), None)
    label = next((t for name, t in by_name.items() if "proba" not in name.lower()), None)
    rows = len(proba if proba is not None else label)  # type: ignore[arg-type]
    predictions = []
    for i in range(rows):
        scores = {}
        if proba is not None:
            scores = {str(j): float(p) for j, p in enumerate(np.atleast_1d(proba[i]).tolist())}
        value = (
            np.atleast_1d(label[i]).tolist()[0]
            if label is not None
            else (max(scores, key=lambda k: scores[k]) if scores else None)
        )
        predictions.append(Prediction(value, scores))
    return predictions


def response_predictions(payload: Any) -> list[Prediction]:
    """One Prediction per instance of an inference response."""
    if not isinstance(payload, dict):
        raise CloudEventError("data", "an inference response is a JSON object")
    if "predictions" in payload:
        return [_prediction_of(value) for value in payload["predictions"]]
    if "outputs" in payload and isinstance(payload["outputs"], list) and payload["outputs"]:
        return _v2_outputs(payload["outputs"])
    if isinstance(payload.get("data"), dict):
        matrix, names = _seldon_matrix(payload["data"])
        return [_prediction_of(row, names) for row in matrix]
    if "jsonData" in payload:
        return [_prediction_of(payload["jsonData"])]
    raise CloudEventError("data", "expected `predictions`, `outputs`, `data` or `jsonData`")


def feedback_truth(payload: Any) -> tuple[str | None, list[object]]:
    """(the request's id, ground-truth values) of a Seldon feedback payload."""
    if not isinstance(payload, dict) or "truth" not in payload:
        raise CloudEventError("data", "Seldon feedback needs `truth`")
    truth = payload["truth"]
    values: list[object]
    if isinstance(truth, dict) and isinstance(truth.get("data"), dict):
        matrix, _ = _seldon_matrix(truth["data"])
        values = [row[0] if isinstance(row, list) and len(row) == 1 else row for row in matrix]
    elif isinstance(truth, dict) and "jsonData" in truth:
        values = [truth["jsonData"]]
    else:
        values = truth if isinstance(truth, list) else [truth]
    response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
    puid = (response.get("meta") or {}).get("puid") if isinstance(response, dict) else None
    return (str(puid) if puid else None), values
