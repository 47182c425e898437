"""Responses are gzipped for clients that accept it: the report (megabytes of HTML),
/metrics, intake answers with many errors; small answers and PNGs are left alone."""

from __future__ import annotations

import gzip

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.data import credit_events
from tests.fixtures_app import Harness, upload_credit_reference

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


async def raw_get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (httpx would otherwise decompress it)."""
    async with client.stream("GET", url, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


async def test_the_report_comes_gzipped_and_decompresses_to_the_same_page(
    harness: Harness,
) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(150, seed=41, age_shift=10)
    await harness.client.post("/v1/models/credit/events", json=events)
    run_id = (await harness.client.post("/v1/models/credit/runs")).json()["run_id"]
    url = f"/v1/models/credit/runs/{run_id}/report"

    plain, page = await raw_get(harness.client, url, IDENTITY)
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert len(page) > 1_000_000
    packed, body = await raw_get(harness.client, url, GZIP)
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-type"].startswith("text/html")
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert int(packed.headers["content-length"]) == len(body)
    assert len(body) < len(page) / 2
    assert gzip.decompress(body) == page

    picture, png = await raw_get(harness.client, f"/v1/models/credit/runs/{run_id}/plot.png", GZIP)
    assert picture.status_code == 200
    assert "content-encoding" not in picture.headers  # PNG is compressed already
    assert png.startswith(b"\x89PNG")


async def test_metrics_come_gzipped_and_still_parse(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    response, body = await raw_get(harness.client, "/metrics", GZIP)
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(gzip.decompress(body).decode()))
    assert any(family.name == "driftmon_build_info" for family in families)


async def test_intake_answers_are_unchanged_gzipped_or_not(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    events = credit_events(60, seed=42)
    for event in events[:40]:
        event["features"] = {"age": "not a number"}
    ndjson = b"\n".join(orjson.dumps(event) for event in events)
    headers = {"content-type": "application/x-ndjson", **GZIP}
    async with harness.client.stream(
        "POST", "/v1/models/credit/events", content=ndjson, headers=headers
    ) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 202
    # forty errors make an answer over the minimum size: compressed, and the same JSON
    assert response.headers["content-encoding"] == "gzip"
    answer = orjson.loads(gzip.decompress(body))
    assert (answer["accepted"], answer["rejected"]) == (20, 40)
    assert [error["index"] for error in answer["errors"]] == list(range(40))


async def test_small_answers_are_not_compressed(harness: Harness) -> None:
    response, body = await raw_get(harness.client, "/healthz", GZIP)
    assert "content-encoding" not in response.headers
    assert orjson.loads(body) == {"status": "ok"}
