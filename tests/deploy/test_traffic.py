"""The compose `demo` profile's traffic generator against a local driftmon, configured by
the compose stack's own models file: clean traffic is judged clean, and once the
traffic drifts, the run says dataset drift."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.server import (
    ADMIN_KEY,
    INGEST_KEY,
    Server,
    clean_environment,
    serving,
    wait_until_ready,
)
from tests.observability.scrape import REPO

COMPOSE = REPO / "deploy" / "compose"
TRAFFIC = COMPOSE / "traffic.py"
MODEL = "credit-risk"
# the models file keeps the newest 1500 events: each run sees one phase alone
PHASE = 1500


@pytest.fixture
def driftmon(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Server]:
    env = clean_environment(
        DRIFTMON_REDIS_URL=redis_url,
        DRIFTMON_KEY_PREFIX=key_prefix,
        DRIFTMON_MODELS_FILE=str(COMPOSE / "models.yaml"),
        DRIFTMON_DETECTION_WORKERS="1",
    )
    command = [str(Path(sys.executable).with_name("driftmon")), "serve"]
    with serving(command, env, tmp_path) as server:
        wait_until_ready(server)
        yield server


def traffic(server: Server, *options: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment(DRIFTMON_INGEST_KEY=INGEST_KEY, DRIFTMON_ADMIN_KEY=ADMIN_KEY)
    return subprocess.run(
        [sys.executable, str(TRAFFIC), "--url", server.url, *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_traffic_drifts_partway_through(driftmon: Server) -> None:
    done = traffic(
        driftmon,
        *("--events", str(2 * PHASE), "--drift-after", str(PHASE)),
        *("--run-every", str(PHASE), "--batch-size", "250", "--rate", "0"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"event {PHASE}: the traffic drifts from here on" in done.stdout
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=driftmon.url, headers=headers, timeout=30) as client:
        runs = client.get(f"/v1/models/{MODEL}/runs").json()["runs"]
        model = client.get(f"/v1/models/{MODEL}").json()
    manual = sorted((run for run in runs if run["trigger"] == "manual"), key=lambda r: r["run_id"])
    assert [run["dataset_drift"] for run in manual] == [False, True], runs
    assert model["stored_events"] == 2 * PHASE


def test_a_second_generator_keeps_the_reference_and_sends_new_events(driftmon: Server) -> None:
    for _ in range(2):
        done = traffic(driftmon, "--events", "200", "--rate", "0", "--batch-size", "100")
        assert done.returncode == 0, done.stdout + done.stderr
    assert "has a reference already" in done.stdout
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    model = httpx.get(f"{driftmon.url}/v1/models/{MODEL}", headers=headers, timeout=30).json()
    assert model["stored_events"] == 400  # new ids each time: nothing deduplicated away


def test_an_unreachable_driftmon_is_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, str(TRAFFIC), "--url", "http://127.0.0.1:9", "--wait", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not ready" in done.stderr


def test_a_wrong_key_is_exit_2_naming_the_answer(driftmon: Server) -> None:
    done = subprocess.run(
        [sys.executable, str(TRAFFIC), "--url", driftmon.url, "--events", "10"],
        env=clean_environment(DRIFTMON_INGEST_KEY="wrong", DRIFTMON_ADMIN_KEY="wrong"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "answered 401" in done.stderr
