"""PII columns: `pii: hash` values stored as keyed tokens and `pii: drop` ones never
stored, by every intake path; and no log record holds a record's values."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from core.config import PiiKeyError, check_pii_key, load_models_file
from core.redis_types import entries, text
from core.schema import pii_token
from detectors.reference import ReferencePolicy, ReferenceRoles, prepare_reference
from service.config import Settings
from tests.data import credit_events, credit_reference
from tests.fixtures_app import Harness, harness_settings, start_harness

KEY = "test-pii-key-0123456789"
OTHER_KEY = "another-pii-key-9876543210"
STREAM = "pii-preds"
SECRET_EMAIL = "alice.secret@example.com"
SECRET_SSN = "987-65-4321"
SECRET_VALUE = "SECRET-VALUE-123"
EMAILS = [f"user{i}@example.com" for i in range(8)]
MODELS_YAML = """
models:
  - name: credit
    columns:
      email: {pii: hash, method: jensenshannon}
      ssn: {pii: drop}
"""


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS_YAML)
    return path


def pii_settings(redis_url: str, key_prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "pii_hmac_key": KEY,
        "streams": {STREAM: "credit"},
        "stream_consumer": "test-consumer",
        "stream_block_ms": 50,
        "stream_claim_idle_seconds": 0.2,
        "stream_max_deliveries": 1,
    }
    return harness_settings(redis_url, key_prefix, **{**values, **overrides})


@pytest.fixture
async def pii_harness(redis_url: str, key_prefix: str, models_file: Path) -> AsyncIterator[Harness]:
    settings = pii_settings(redis_url, key_prefix, models_file=models_file)
    async for running in start_harness(settings):
        yield running


def pii_reference() -> pd.DataFrame:
    frame = credit_reference()
    frame["email"] = np.random.default_rng(5).choice(EMAILS, len(frame))
    frame["ssn"] = [f"{100 + i % 800:03d}-12-{i:04d}" for i in range(len(frame))]
    return frame


def pii_events(count: int, seed: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = credit_events(count, seed, prefix="pii")
    for i, event in enumerate(events):
        event["features"]["email"] = SECRET_EMAIL if i == 0 else EMAILS[i % len(EMAILS)]
        event["features"]["ssn"] = SECRET_SSN
    return events


async def upload(harness: Harness, frame: pd.DataFrame) -> dict[str, Any]:
    response = await harness.client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score"},
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def stored_events(harness: Harness, expected: int) -> None:
    async def reached() -> bool:
        return bool(await harness.services.stores.events.total_events("credit") == expected)

    await eventually(reached)


async def dead_letters(harness: Harness) -> list[dict[str, str]]:
    key = harness.settings.key_prefix + "deadletter:" + STREAM
    redis: Redis = harness.services.redis
    return [{text(k): text(v) for k, v in f.items()} for _, f in entries(await redis.xrange(key))]


async def everything_stored(redis: Redis, prefix: str) -> str:
    """Every key under the prefix (SCAN) with every value it holds, read by its TYPE;
    a Parquet value is decoded to CSV too (it is compressed)."""
    parts: list[Any] = []
    async for key in redis.scan_iter(match=prefix + "*", count=1000):
        parts += [key, *await _values(redis, key)]
    raw = (part if isinstance(part, bytes) else str(part).encode() for part in parts)
    return b"\n".join(raw).decode(errors="replace")  # packed numbers are not text


async def _values(redis: Redis, key: bytes) -> list[Any]:
    kind = text(await redis.type(key))
    if kind == "string":
        value: bytes = await redis.get(key)  # type: ignore[assignment]
        parquet = value.startswith(b"PAR1")
        return [value, pd.read_parquet(io.BytesIO(value)).to_csv() if parquet else ""]
    if kind == "hash":
        return [part for pair in (await redis.hgetall(key)).items() for part in pair]
    if kind == "stream":
        stream = entries(await redis.xrange(key))
        return [part for i, fields in stream for part in (i, *fields.keys(), *fields.values())]
    if kind == "zset":
        return list(await redis.zrange(key, 0, -1))
    if kind == "set":
        return list(await redis.smembers(key))
    if kind == "list":
        return list(await redis.lrange(key, 0, -1))
    raise AssertionError(f"{text(key)}: a {kind} this test cannot read")


async def send_by_http_and_stream(harness: Harness) -> None:
    ndjson = b"\n".join(orjson.dumps(event) for event in pii_events(50, seed=3))
    for body, content_type in (
        (orjson.dumps(pii_events(200, seed=1)), "application/json"),
        (ndjson, "application/x-ndjson"),
    ):
        answer = await harness.client.post(
            "/v1/models/credit/events", content=body, headers={"content-type": content_type}
        )
        assert answer.json()["accepted"] > 0, answer.text
        assert answer.json()["errors"] == []
    redis: Redis = harness.services.redis
    await redis.xadd(STREAM, {"events": orjson.dumps(pii_events(100, seed=2))})
    await redis.xadd(STREAM, {"event": orjson.dumps(pii_events(1, seed=4)[0])})
    bad = pii_events(1, seed=5)[0]
    bad["features"]["age"] = "forty"  # rejected: its entry is dead-lettered
    await redis.xadd(STREAM, {"event": orjson.dumps(bad)})


async def test_pii_never_reaches_redis_and_detection_still_runs(pii_harness: Harness) -> None:
    reference = pii_reference()
    uploaded = await upload(pii_harness, reference)
    assert uploaded["columns"]["email"] == "categorical (pii: hash)"
    assert "ssn" not in uploaded["columns"]
    assert "ssn" in uploaded["ignored"]
    await send_by_http_and_stream(pii_harness)
    await stored_events(pii_harness, 351)
    await eventually(lambda: _has_letters(pii_harness))

    run = (await pii_harness.client.post("/v1/models/credit/runs")).json()
    assert run["status"] == "ok", run
    assert run["columns"]["email"]["kind"] == "categorical"
    assert run["columns"]["email"]["status"] == "ok"
    assert "ssn" not in run["columns"]
    assert run["data_quality"]["schema"]["new_columns"] == {}

    letter = (await dead_letters(pii_harness))[0]
    assert letter["withheld"] == "event"
    assert "field:event" not in letter
    dump = await everything_stored(pii_harness.services.redis, pii_harness.settings.key_prefix)
    assert "APAC" in dump  # the scan does read the values: a region is there
    for raw in [SECRET_EMAIL, SECRET_SSN, *EMAILS, *reference["ssn"][:50]]:
        assert raw not in dump, raw
    assert pii_token(SECRET_EMAIL, KEY.encode()) in dump
    assert pii_token(EMAILS[0], KEY.encode()) in dump
    assert pii_token(SECRET_EMAIL, OTHER_KEY.encode()) not in dump


async def _has_letters(harness: Harness) -> bool:
    return bool(await dead_letters(harness))


async def test_every_replica_applies_the_stored_policy(
    redis_url: str, key_prefix: str, pii_harness: Harness
) -> None:
    """Without the models file, a replica with the key hashes and drops as the schema
    says; one without the key refuses hashed values rather than store them raw."""
    await upload(pii_harness, pii_reference())
    event = pii_events(2, seed=6)
    async for keyed in start_harness(harness_settings(redis_url, key_prefix, pii_hmac_key=KEY)):
        answer = await keyed.client.post("/v1/models/credit/events", json=event)
        assert answer.json()["accepted"] == 2, answer.text
    async for keyless in start_harness(harness_settings(redis_url, key_prefix)):
        answer = await keyless.client.post("/v1/models/credit/events", json=event)
        assert answer.json()["accepted"] == 0
        assert "pii" in answer.json()["errors"][0]["error"]
    dump = await everything_stored(pii_harness.services.redis, key_prefix)
    assert SECRET_EMAIL not in dump
    assert SECRET_SSN not in dump


def test_tokens_are_keyed() -> None:
    body = pii_reference().to_csv(index=False).encode()
    roles = ReferenceRoles(prediction="prediction", scores="score")
    tokens = []
    for key in (KEY, OTHER_KEY):
        policy = ReferencePolicy(pii={"email": "hash", "ssn": "drop"}, pii_key=key.encode())
        prepared = prepare_reference(body, roles, policy)
        assert "ssn" not in prepared.frame.columns
        tokens.append(set(prepared.frame["email"]))
    assert tokens[0] == {pii_token(email, KEY.encode()) for email in EMAILS}
    assert tokens[0].isdisjoint(tokens[1])


@pytest.mark.parametrize(
    ("column", "error"),
    [
        ("{pii: hash, method: wasserstein}", "compared as categorical"),
        ("{pii: drop, threshold: 0.2}", "never compared"),
        ("{pii: encrypt}", "'hash' or 'drop'"),
    ],
)
def test_pii_columns_the_models_file_cannot_mean(tmp_path: Path, column: str, error: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  - name: m\n    columns:\n      email: {column}\n")
    with pytest.raises(ValidationError, match=error):
        load_models_file(path)


def test_a_short_key_fails_start_up() -> None:
    with pytest.raises(PiiKeyError, match="shorter than 16 bytes"):
        check_pii_key({}, b"short", "DRIFTMON_PII_HMAC_KEY")


async def test_hashing_without_a_key_fails_start_up(
    redis_url: str, key_prefix: str, models_file: Path
) -> None:
    settings = harness_settings(redis_url, key_prefix, models_file=models_file)
    with pytest.raises(PiiKeyError, match=r"credit\.email.*DRIFTMON_PII_HMAC_KEY is not set"):
        async for _ in start_harness(settings):
            pass


async def test_logs_never_hold_a_records_values(
    redis_url: str,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rejected records, by HTTP and by stream, and a storing failure whose exception
    quotes a value: the value is in no log record, nor in the answer."""
    caplog.set_level(logging.DEBUG)
    bad: list[dict[str, Any]] = credit_events(2, seed=7)
    bad[0]["features"]["age"] = SECRET_VALUE
    bad[1]["timestamp"] = SECRET_VALUE
    async for harness in start_harness(pii_settings(redis_url, key_prefix)):
        await upload(harness, credit_reference())
        answer = await harness.client.post("/v1/models/credit/events", json=bad)
        assert answer.json()["rejected"] == 2
        assert SECRET_VALUE not in answer.text
        await harness.services.redis.xadd(STREAM, {"events": orjson.dumps(bad)})
        await eventually(partial(_letters, harness, 1))

        async def failing(*_: object, **__: object) -> None:
            raise ValueError(f"could not convert string to float: {SECRET_VALUE!r}")

        monkeypatch.setattr(harness.services.intake, "submit", failing)
        await harness.services.redis.xadd(STREAM, {"events": orjson.dumps(bad)})
        await eventually(partial(_letters, harness, 2))
        assert (await dead_letters(harness))[1]["reason"].endswith(": ValueError")
    assert any(record.name == "collectors.stream_handling" for record in caplog.records)
    for record in caplog.records:
        assert SECRET_VALUE not in caplog.handler.format(record), record.name


async def _letters(harness: Harness, count: int) -> bool:
    return len(await dead_letters(harness)) >= count
