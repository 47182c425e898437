"""Helpers of the observability tests: promtool, a live scrape of the app, metric names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.data import credit_events
from tests.fixtures_app import Harness, upload_credit_reference

REPO = Path(__file__).resolve().parents[2]
DATASOURCE_UID = "driftmon-prometheus"
METRIC_NAME = re.compile(r"\b(?:driftmon|process)_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool() -> str:
    """Path of promtool. Missing: a skip on a workstation, a failure in CI (CI is set)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not on PATH but CI is set: `make tools` installs it")
        pytest.skip("promtool is not on PATH (`make tools` installs it; with CI set this fails)")
    return path


def run_promtool(*args: str) -> str:
    """Run promtool from the repository root; fail with its output unless it exits 0."""
    done = subprocess.run(
        [promtool(), *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


async def live_scrape(harness: Harness) -> str:
    """/metrics after a reference upload, accepted and rejected events and a detection run."""
    await upload_credit_reference(harness.client)
    accepted = await harness.client.post(
        "/v1/models/credit/events", json=credit_events(400, seed=31, age_shift=10)
    )
    assert accepted.status_code == 202, accepted.text
    bad = credit_events(1, seed=32, prefix="bad")
    bad[0]["features"] = {"age": "forty"}
    await harness.client.post("/v1/models/credit/events", json=bad)
    run = await harness.client.post("/v1/models/credit/runs")
    assert run.json()["status"] == "ok", run.text
    scrape = await harness.client.get("/metrics")
    assert scrape.status_code == 200
    return scrape.text


def exported_names(scrape: str) -> set[str]:
    """Series names a query may use: families (counters already end in _total in the text
    exposition), histogram families with their suffixes, and every sample name."""
    names: set[str] = set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            names.add(family)
            if kind == "histogram":
                names.update(family + suffix for suffix in HISTOGRAM_SUFFIXES)
            if kind == "counter" and not family.endswith("_total"):
                names.add(f"{family}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def metric_names(expressions: Iterable[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)}


def assert_all_exported(used: set[str], scrape: str) -> None:
    assert used, "no driftmon_/process_ metric names found in the expressions"
    missing = sorted(used - exported_names(scrape))
    assert not missing, f"not in a live scrape of the app: {missing}"
