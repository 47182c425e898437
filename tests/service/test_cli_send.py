"""`driftmon send`'s parts: rows to events by the model's schema, files read in batches,
and retries of 503/429 (against a real local HTTP server answering as told)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from core.schema import ModelSchema
from service.cli import build_cli
from service.cli_events import EventMapper
from service.cli_files import count_rows, csv_rows, line_batches, row_batches
from service.cli_http import RetryPolicy, retry_after_seconds

SCHEMA = ModelSchema(
    features={"age": "numerical", "region": "categorical", "zip": "categorical"},
    prediction="approved",
    prediction_kind="categorical",
    scores={"1": "p_yes"},
    label="truth",
    event_id="request_id",
)


def test_csv_rows_become_events_by_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "request_id,timestamp,age,region,zip,approved,p_yes,truth,scores.0\n"
        'r-1,2026-11-28T10:00:00Z,42,"NA",007,1,0.8,,0.2\n'
        "r-2,1795870292,forty,EU,,0,0.1,0,\n"
    )
    mapper = EventMapper(SCHEMA)
    first, second = (mapper.event(row) for row in csv_rows(path))
    assert first == {
        "event_id": "r-1",
        "timestamp": "2026-11-28T10:00:00Z",
        # "NA" is a region and "007" a code, not a missing value and 7
        "features": {"age": 42.0, "region": "NA", "zip": "007"},
        "prediction": "1",
        "scores": {"1": 0.8, "0": 0.2},
    }
    # an empty cell is missing; text in a numerical column goes as it is, for the
    # server to reject that row naming features.age
    assert second["features"] == {"age": "forty", "region": "EU"}
    assert second["timestamp"] == 1795870292.0
    assert second["label"] == "0"


def test_parquet_rows_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    when = datetime(2026, 11, 28, 10, tzinfo=UTC)
    frame = pd.DataFrame(
        {"age": [42.0, None], "zip": [7.0, None], "approved": [1, 0], "timestamp": [when] * 2}
    )
    frame.to_parquet(path, index=False)
    mapper = EventMapper(SCHEMA)
    (batch,) = list(row_batches(path, "parquet", 10))
    first, second = (mapper.event(row) for row in batch)
    assert first["features"] == {"age": 42.0, "zip": 7}
    assert first["prediction"] == 1
    assert datetime.fromisoformat(str(first["timestamp"])) == when
    assert second["features"] == {}
    assert count_rows(path, "parquet") == 2


def test_files_are_read_in_batches_of_the_size_given(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    lines = [json.dumps({"event_id": str(index), "features": {}}) for index in range(7)]
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    batches = list(line_batches(path, 3))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [line.decode() for batch in batches for line in batch] == lines
    assert count_rows(path, "ndjson") == 7


def test_retry_after_as_seconds_or_a_date() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    now = datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert retry_after_seconds(answer("3")) == 3.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(answer(later), now=now) == 30.0
    assert retry_after_seconds(answer("soon")) is None
    assert retry_after_seconds(httpx.Response(503)) is None


def test_backoff_without_retry_after_doubles_with_full_jitter() -> None:
    busy = httpx.Response(503)
    top = RetryPolicy(base_seconds=0.5, cap_seconds=3.0, jitter=lambda: 1.0)
    assert [top.delay(attempt, busy) for attempt in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    bottom = RetryPolicy(jitter=lambda: 0.0)
    assert bottom.delay(4, busy) == 0.0
    told = RetryPolicy(jitter=lambda: 1.0)
    assert told.delay(0, httpx.Response(429, headers={"Retry-After": "7"})) == 7.0


MODEL_ANSWER = {"name": "m", "schema": SCHEMA.to_dict()}
EVENTS_PATH = "/v1/models/m/events"


def send_file(httpserver: HTTPServer, tmp_path: Path, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "events.csv"
    path.write_text("request_id,age,region\nr-1,42,EU\nr-2,35,US\n")
    httpserver.expect_request("/v1/models/m", method="GET").respond_with_json(MODEL_ANSWER)
    env = {"DRIFTMON_URL": httpserver.url_for("/"), "DRIFTMON_API_KEY": "k" * 20}
    result = CliRunner().invoke(build_cli(), ["send", "m", str(path), *options], env=env)
    return result.exit_code, result.stdout, result.stderr


def posted_bodies(httpserver: HTTPServer) -> list[object]:
    return [
        orjson.loads(request.get_data()) for request, _ in httpserver.log
        if request.path == EVENTS_PATH
    ]  # fmt: skip


def test_a_503_with_retry_after_is_retried_then_counted(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_oneshot_request(EVENTS_PATH, method="POST").respond_with_data(
        "busy", status=503, headers={"Retry-After": "1"}
    )
    accepted = {"accepted": 1, "duplicates": 1, "rejected": 0, "errors": []}
    httpserver.expect_oneshot_request(
        EVENTS_PATH, method="POST", headers={"X-API-Key": "k" * 20}
    ).respond_with_json(accepted, status=202)
    code, out, err = send_file(httpserver, tmp_path)
    assert code == 0, err
    first, second = posted_bodies(httpserver)
    assert first == second  # the same batch, sent again
    assert isinstance(first, list)
    assert [event["event_id"] for event in first] == ["r-1", "r-2"]
    assert "│    2 │        1 │          1 │        0 │" in out


def test_retries_run_out_and_rejections_exit_1(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(EVENTS_PATH, method="POST").respond_with_data(
        "busy", status=429, headers={"Retry-After": "0"}
    )
    code, _, err = send_file(httpserver, tmp_path, "--max-retries", "2")
    assert code == 2
    assert "answered 429" in err
    assert len(posted_bodies(httpserver)) == 3  # the first try and 2 retries

    httpserver.clear()
    error = {"index": 1, "field": "features.age", "reason": "type_mismatch", "error": "bad age"}
    rejected = {"accepted": 1, "duplicates": 0, "rejected": 1, "errors": [error]}
    httpserver.expect_request(EVENTS_PATH, method="POST").respond_with_json(rejected, status=202)
    code, out, _ = send_file(httpserver, tmp_path)
    assert code == 1
    assert "│ 2   │ features.age │ type_mismatch │ bad age │" in out


@pytest.mark.parametrize("status", [400, 413])
def test_a_refused_batch_stops_the_run_with_exit_2(
    httpserver: HTTPServer, tmp_path: Path, status: int
) -> None:
    detail = {"detail": {"field": "body", "error": "too big"}}
    httpserver.expect_request(EVENTS_PATH, method="POST").respond_with_json(detail, status=status)
    code, _, err = send_file(httpserver, tmp_path)
    assert code == 2
    assert f"answered {status}: too big; field: body (0 rows sent" in err
    assert ("--batch-size" in err) == (status == 413)
