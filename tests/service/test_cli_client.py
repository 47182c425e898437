"""`driftmon reference` and `driftmon send` against a real `driftmon serve` (a child
process on its own Redis, with an API key), checked by what the server stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from service.cli import build_cli
from service.launch import free_port, serve_command, wait_until_ready
from tests.data import credit_events, credit_reference
from tests.fixtures_app import api_key
from tests.redis_server import RedisServer

KEY = api_key("cli")


@dataclass(frozen=True)
class Live:
    url: str

    def model(self, name: str) -> dict[str, object]:
        response = httpx.get(f"{self.url}/v1/models/{name}", headers={"X-API-Key": KEY})
        assert response.status_code == 200, response.text
        described: dict[str, object] = response.json()
        return described

    def run(self, *args: str, key: str | None = KEY, url: str | None = None) -> Result:
        env = {"DRIFTMON_URL": url or self.url, "DRIFTMON_API_KEY": key, "COLUMNS": "200"}
        return CliRunner().invoke(build_cli(), list(args), env=env)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`driftmon serve` with its options on the command line, as a user starts it."""
    home = tmp_path_factory.mktemp("serve")
    keys = [{"name": "cli", "key": KEY, "scopes": ["admin", "ingest", "read"]}]
    env = {name: value for name, value in os.environ.items() if not name.startswith("DRIFTMON_")}
    with RedisServer() as redis, (home / "serve.log").open("wb") as log:
        port = free_port()
        command = serve_command(
            port, home / "data",
            "--redis-url", redis.url, "--key-prefix", f"dmtest{uuid4().hex[:8]}:",
            "--detection-workers", "0", "--no-scheduler-enabled", "--log-level", "warning",
            "--api-keys", json.dumps(keys),
        )  # fmt: skip
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            ready = wait_until_ready(url, process, timeout=120)
            assert ready, (home / "serve.log").read_text()
            yield Live(url)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=120) == 0, "SIGTERM is a clean stop"


def event_rows(count: int, seed: int, prefix: str) -> pd.DataFrame:
    """Prediction logs as a flat table: the reference's columns, and an event_id first."""
    frame = credit_reference(rows=count, seed=seed)
    frame.insert(0, "event_id", [f"{prefix}-{seed}-{index}" for index in range(count)])
    return frame


def with_reference(live: Live, tmp_path: Path, model: str) -> str:
    path = tmp_path / "reference.csv"
    credit_reference().to_csv(path, index=False)
    result = live.run("reference", "upload", model, str(path), "--prediction", "prediction",
                      "--scores", "score", "--categorical", "region")  # fmt: skip
    assert result.exit_code == 0, result.output
    version = live.model(model)["active_reference"]
    assert isinstance(version, str)
    return version


def test_reference_upload_then_list(live: Live, tmp_path: Path) -> None:
    first = with_reference(live, tmp_path, "ref-model")
    described = live.model("ref-model")
    assert described["columns"] == {
        "age": "numerical", "income": "numerical", "region": "categorical",
        "prediction": "prediction (categorical)", "score": "score (class 1)",
    }  # fmt: skip
    parquet = tmp_path / "reference.parquet"
    credit_reference(rows=500, seed=2).to_parquet(parquet, index=False)
    uploaded = live.run("reference", "upload", "ref-model", str(parquet), "--prediction",
                        "prediction", "--scores", "score")  # fmt: skip
    assert uploaded.exit_code == 0, uploaded.output
    second = live.model("ref-model")["active_reference"]
    assert second != first
    assert f"{second}" in uploaded.stdout  # the answer's summary
    assert "500" in uploaded.stdout

    listed = live.run("reference", "list", "ref-model")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    (active,) = [line for line in lines if str(second) in line and "yes" in line]
    assert "500" in active
    assert [line for line in lines if str(first) in line and "3000" in line]


def test_send_csv_counts_accepted_rejected_and_duplicates(live: Live, tmp_path: Path) -> None:
    with_reference(live, tmp_path, "send-csv")
    rows = event_rows(300, seed=3, prefix="csv").astype({"income": object})
    bad = [10, 250]  # type mismatches: the server rejects these rows alone
    for index in bad:
        rows.loc[index, "income"] = "52k"
    repeats = rows.iloc[[1, 2, 3]]  # sent again in the last batch: duplicates
    path = tmp_path / "events.csv"
    pd.concat([rows, repeats]).to_csv(path, index=False)

    result = live.run("send", "send-csv", str(path), "--batch-size", "100")
    assert result.exit_code == 1, result.output  # some rows were rejected
    stored = live.model("send-csv")["stored_events"]
    assert stored == len(rows) - len(bad)
    summary = [line for line in result.stdout.splitlines() if line.strip().startswith("│")]
    counts = [cell.strip() for cell in summary[0].strip("│ ").split("│")]
    assert counts == [str(len(rows) + 3), str(stored), "3", str(len(bad))]
    for index in bad:  # rows named 1-based, as a reader counts data rows
        assert any(
            line.split("│")[1].strip() == str(index + 1) and "features.income" in line
            for line in summary
        )


def test_send_ndjson_then_again_is_all_duplicates(live: Live, tmp_path: Path) -> None:
    with_reference(live, tmp_path, "send-ndjson")
    path = tmp_path / "events.ndjson"
    events = credit_events(120, seed=4, prefix="nd")
    path.write_text("\n".join(json.dumps(event) for event in events) + "\n\n")
    first = live.run("send", "send-ndjson", str(path), "--batch-size", "50")
    assert first.exit_code == 0, first.output
    assert live.model("send-ndjson")["stored_events"] == len(events)
    again = live.run("send", "send-ndjson", str(path))
    assert again.exit_code == 0, again.output  # duplicates are not failures
    assert live.model("send-ndjson")["stored_events"] == len(events)
    assert f"│ {len(events)} │ 0 │ {len(events)} │ 0 │" in " ".join(again.stdout.split())


def test_send_parquet_types_survive(live: Live, tmp_path: Path) -> None:
    with_reference(live, tmp_path, "send-parquet")
    path = tmp_path / "events.parquet"
    frame = event_rows(80, seed=5, prefix="pq")
    frame["timestamp"] = pd.Timestamp.now(tz="UTC")
    frame.to_parquet(path, index=False)
    result = live.run("send", "send-parquet", str(path), "--batch-size", "30")
    assert result.exit_code == 0, result.output
    assert live.model("send-parquet")["stored_events"] == len(frame)


def test_input_errors_exit_2_before_anything_is_sent(live: Live, tmp_path: Path) -> None:
    with_reference(live, tmp_path, "send-bad")
    lines = tmp_path / "events.ndjson"
    good = json.dumps(credit_events(1, seed=6, prefix="bad")[0])
    lines.write_text(f"{good}\n{{not json\n")
    result = live.run("send", "send-bad", str(lines))
    assert result.exit_code == 2
    assert f"{lines}:2: not a JSON object" in result.stderr
    assert live.model("send-bad")["stored_events"] == 0

    other = tmp_path / "events.txt"
    other.write_text(good)
    unknown_format = live.run("send", "send-bad", str(other))
    assert unknown_format.exit_code == 2
    assert "--format" in unknown_format.stderr


def test_server_refusals_exit_2_with_the_servers_reason(live: Live, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(credit_events(1, seed=7)[0]) + "\n")
    unknown = live.run("send", "no-such-model", str(path))
    assert unknown.exit_code == 2
    assert "404" in unknown.stderr
    assert "model 'no-such-model' is unknown" in unknown.stderr
    reference = tmp_path / "reference.csv"
    credit_reference(rows=50).to_csv(reference, index=False)
    refused = live.run("reference", "upload", "refused", str(reference), "--label", "nosuch")
    assert refused.exit_code == 2
    assert "PUT /v1/models/refused/reference answered 400" in refused.stderr
    assert "nosuch" in refused.stderr
    keyless = live.run("reference", "list", key=None)
    assert keyless.exit_code == 2
    assert "401" in keyless.stderr
    assert live.run("reference", "list", "bad/name").exit_code == 2


def test_a_server_not_running_is_a_clear_error(live: Live, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = live.run("reference", "list", url=nowhere)
    assert result.exit_code == 2
    assert f"cannot connect to {nowhere}" in result.stderr
    assert "DRIFTMON_URL" in result.stderr
