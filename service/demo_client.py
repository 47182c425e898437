"""The demo's HTTP steps: each calls the server like any client would and prints what it
sent and got back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from service.demo_scenario import BATCH_SIZE, DEMO_DRIFT_SHARE, DemoError
from service.sample_data.generate import MODEL_NAME, REFERENCE_CSV


def expect(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of an expected answer; anything else stops the demo, showing why."""
    if response.status_code not in statuses:
        raise DemoError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


def model_path(suffix: str = "") -> str:
    return f"/v1/models/{MODEL_NAME}{suffix}"


def upload_reference(client: httpx.Client) -> None:
    print(f"\n== 1. upload the training reference ({REFERENCE_CSV.name})")
    body = expect(
        client.put(
            model_path("/reference"),
            params={"prediction": "prediction", "scores": "score", "label": "label"},
            content=REFERENCE_CSV.read_bytes(),
            headers={"content-type": "text/csv"},
        ),
        201,
    )
    print(f"   version {body['version']}, {body['rows']} rows; columns:")
    for name, kind in body["columns"].items():
        print(f"     {name:<18} {kind}")
    print(f"   model config: drift_share {DEMO_DRIFT_SHARE} (from models.yaml in the data dir)")


def batches(events: list[dict[str, Any]], size: int = BATCH_SIZE) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def send_events(
    client: httpx.Client, events: list[dict[str, Any]], bad_records: list[dict[str, Any]]
) -> None:
    """The events as JSON arrays; bad_records ride along in the first batch."""
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[dict[str, Any]] = []
    for number, batch in enumerate(batches(events)):
        body = expect(
            client.post(model_path("/events"), json=batch if number else [*batch, *bad_records]),
            202,
        )
        for name in totals:
            totals[name] += body[name]
        errors.extend(body["errors"])
    print(
        f"   sent {len(events) + len(bad_records)} records in batches of about {BATCH_SIZE}: "
        f"{totals['accepted']} accepted, {totals['duplicates']} duplicates, "
        f"{totals['rejected']} rejected"
    )
    for error in errors:
        print(
            f"     rejected: record {error['index']} of its batch (202 all the same): "
            f"{error['error']}"
        )


def post_labels(client: httpx.Client, labels: list[dict[str, Any]]) -> None:
    unknown = {"event_id": "evt-never-sent", "label": 1}
    body = expect(client.post(model_path("/labels"), json=[*labels, unknown]), 202)
    print(
        f"   ground truth for {len(labels)} sent events and 1 unknown id: "
        f"accepted {body['accepted']}, unknown {body['unknown']}"
    )


def run_detection(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = expect(client.post(model_path("/runs")), 200)
    return result


def save_report(client: httpx.Client, run_id: str, path: Path) -> str:
    url = model_path(f"/runs/{run_id}/report")
    response = client.get(url)
    if response.status_code != 200:
        raise DemoError(f"GET {url} answered {response.status_code}: {response.text[:500]}")
    path.write_bytes(response.content)
    return str(client.base_url.join(url))


def save_plot(client: httpx.Client, run_id: str, path: Path) -> str:
    """The drift history picture of the model's runs up to run_id."""
    url = model_path(f"/runs/{run_id}/plot.png")
    response = client.get(url)
    if response.status_code != 200 or not response.content.startswith(b"\x89PNG"):
        raise DemoError(f"GET {url} answered {response.status_code}: {response.text[:200]}")
    path.write_bytes(response.content)
    return str(client.base_url.join(url))


def drift_score_lines(client: httpx.Client, limit: int = 8) -> list[str]:
    scrape = client.get("/metrics")
    scrape.raise_for_status()
    lines = [
        line for line in scrape.text.splitlines() if line.startswith("driftmon_column_drift_score")
    ]
    return lines[:limit]
