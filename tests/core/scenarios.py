"""Detection runs on fixed inputs, behind the stored RunResult fixtures.

Each scenario drives the app through its HTTP API on a manual clock that starts at a
fixed instant and feeds seeded data, so a run is reproducible but for its id, start and
duration. The fixtures in fixtures/ are these runs' `model_dump_json()` as written by
commit 7762851, before RunResult's sections were typed; the tests run them again and
compare."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.clock import ManualClock
from core.results import RunResult
from tests.fixtures_app import Harness, harness_settings, start_harness

FIXTURES = Path(__file__).parent / "fixtures"
CLOCK_START = 1_800_000_000.0
MODEL = "credit"
# what differs between two runs of the same inputs: the reference version is a hash of
# the reference as pandas hashes its columns, which pandas releases may change (the
# fixtures' hashes are not those of pandas 3.0.6)
VOLATILE_FIELDS = ("run_id", "started_at", "duration_seconds", "reference_version")


def _reference_csv(rows: int, seed: int, *, labels: bool, scores: bool = True) -> bytes:
    """A credit-like reference; `channel` is a feature no event of the scenarios sends."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round()
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    frame = pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50_000, 10_000, rows),
            "region": rng.choice(["EU", "US", "APAC"], rows, p=[0.5, 0.3, 0.2]),
            "channel": rng.choice(["web", "branch"], rows),
            "prediction": (score > 0.5).astype(int),
        }
    )
    if scores:
        frame["score"] = score
    if labels:
        frame["label"] = (rng.random(rows) < score).astype(int)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _events(
    count: int, seed: int, *, version: str, score_shift: float = 0.0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, count).round()
    income = rng.normal(50_000, 10_000, count)
    region = rng.choice(["EU", "US", "APAC"], count, p=[0.5, 0.3, 0.2])
    score = np.clip(1 / (1 + np.exp(-(age - 40) / 10)) + score_shift, 0, 1)
    return [
        {
            "event_id": f"{version}-{seed}-{i}",
            "model_version": version,
            "features": {
                "age": float(age[i]),
                "income": float(income[i]),
                "region": str(region[i]),
            },
            "prediction": int(score[i] > 0.5),
            "scores": {"1": float(score[i])},
        }
        for i in range(count)
    ]


async def _put_reference(harness: Harness, body: bytes, **roles: str) -> str:
    response = await harness.client.put(f"/v1/models/{MODEL}/reference", params=roles, content=body)
    assert response.status_code == 201, response.text
    version: str = response.json()["version"]
    return version


async def _post(harness: Harness, what: str, records: list[dict[str, Any]]) -> None:
    response = await harness.client.post(f"/v1/models/{MODEL}/{what}", json=records)
    assert response.status_code == 202, response.text


def _spoil_quality(events: list[dict[str, Any]]) -> None:
    """Missing incomes (critical), unseen regions and ages out of range (warnings)."""
    for event in events[:200]:
        event["features"]["income"] = None
    for event in events[200:230]:
        event["features"]["region"] = "MARS"
    for event in events[230:240]:
        event["features"]["age"] = 500.0


# records intake refuses: a wrong type in a feature, and fields the schema lacks
REFUSED_RECORDS: list[dict[str, Any]] = [
    *(
        {"event_id": f"bad-age-{i}", "features": {"age": "forty"}, "prediction": 1}
        for i in range(3)
    ),
    {"event_id": "shoe", "features": {"shoe_size": 44}, "prediction": 1},
    *(
        {"event_id": f"colour-{i}", "features": {"colour": "red"}, "prediction": 0}
        for i in range(2)
    ),
]


def _kpi_points(now: float, window_seconds: float) -> list[dict[str, Any]]:
    """approval_rate in both periods, complaints only before the window, refunds from
    a baseline of zero (no relative change)."""
    before = now - window_seconds
    points = [("approval_rate", 0.6 + 0.01 * h, before - 3600 * h) for h in range(1, 5)]
    points += [("approval_rate", 0.4 + 0.05 * m, now - 60 * m) for m in range(1, 4)]
    points += [("complaints", value, before - 7200 * (i + 1)) for i, value in enumerate((3, 5))]
    points += [("refunds", 0.0, before - 600), ("refunds", 0.0, before - 1200)]
    points += [("refunds", 2.0, now - 300), ("refunds", 1.0, now - 200)]
    return [{"name": name, "value": value, "timestamp": at} for name, value, at in points]


async def _classifier_full(harness: Harness) -> None:
    """Labels (inline and late), scores, a canary version, KPIs, every kind of finding."""
    body = _reference_csv(3000, seed=1, labels=True)
    await _put_reference(harness, body, prediction="prediction", scores="score", label="label")
    stable = _events(600, seed=2, version="7")
    canary = _events(300, seed=3, version="8", score_shift=0.3)
    _spoil_quality(stable)
    for event in stable[300:]:
        event["label"] = event["prediction"]
    await _post(harness, "events", stable[:450] + REFUSED_RECORDS)
    harness.clock.advance(120)
    await _post(harness, "events", stable[450:] + canary)
    late = [{"event_id": event["event_id"], "label": 1} for event in canary[:200]]
    await _post(harness, "labels", late)
    now = harness.clock.now()
    await _post(harness, "kpis", _kpi_points(now, harness.settings.window_seconds))


async def _insufficient_data(harness: Harness) -> None:
    await _put_reference(
        harness, _reference_csv(1000, seed=4, labels=False), prediction="prediction"
    )
    await _post(harness, "events", _events(40, seed=5, version="7"))


async def _error(harness: Harness) -> None:
    """A reference whose stored bytes are broken. Its own rows: workers cache decoded
    references by version."""
    body = _reference_csv(2345, seed=6, labels=False)
    version = await _put_reference(harness, body, prediction="prediction", scores="score")
    await _post(harness, "events", _events(200, seed=7, version="7"))
    services = harness.services
    await services.redis.set(services.keys.reference_data(MODEL, version), b"not parquet")


def _regression_rows(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(0, 1, rows),
            "x2": rng.normal(5, 2, rows),
            "segment": rng.choice(["a", "b"], rows),
        }
    )
    frame["y_hat"] = 2 * frame["x1"] + frame["x2"]
    frame["y"] = frame["y_hat"] + rng.normal(0, 0.5, rows)
    return frame


async def _regression(harness: Harness) -> None:
    """A numerical prediction; the reference has no label, the events mostly do."""
    reference = _regression_rows(2000, seed=8).drop(columns=["y"])
    await _put_reference(harness, reference.to_csv(index=False).encode(), prediction="y_hat")
    window = _regression_rows(400, seed=9)
    events = [
        {
            "event_id": f"r-{i}",
            "features": {"x1": row["x1"], "x2": row["x2"] + 0.5, "segment": row["segment"]},
            "prediction": row["y_hat"],
            "label": row["y"] if i % 5 else None,
        }
        for i, row in enumerate(window.to_dict("records"))
    ]
    await _post(harness, "events", events)


async def _features_only(harness: Harness) -> None:
    """No prediction column, multivariate off: empty prediction, performance and
    multivariate sections."""
    rows = pd.read_csv(io.BytesIO(_reference_csv(1500, seed=10, labels=False)))
    features = rows[["age", "income", "region"]].to_csv(index=False).encode()
    await _put_reference(harness, features)
    events = _events(150, seed=11, version="7")
    for event in events:
        del event["prediction"], event["scores"], event["model_version"]
    await _post(harness, "events", events)


async def _few_labels(harness: Harness) -> None:
    """A small window: too few labels for metrics, too few rows for the domain
    classifier; a prediction without scores, one model version."""
    body = _reference_csv(1200, seed=12, labels=True, scores=False)
    await _put_reference(harness, body, prediction="prediction", label="label")
    events = _events(55, seed=13, version="7")
    for i, event in enumerate(events):
        del event["scores"]
        event["label"] = event["prediction"] if i < 10 else None
    await _post(harness, "events", events)


@dataclass(frozen=True)
class Scenario:
    name: str
    feed: Callable[[Harness], Awaitable[None]]
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"{self.name}.json"


SCENARIOS = (
    Scenario("classifier_full", _classifier_full),
    Scenario("insufficient_data", _insufficient_data),
    Scenario("error", _error),
    Scenario("regression", _regression),
    Scenario("features_only", _features_only, {"multivariate_enabled": False}),
    Scenario("few_labels", _few_labels, {"min_window_events": 50}),
)


async def run_scenario(scenario: Scenario, redis_url: str, key_prefix: str) -> RunResult:
    """One manual run after the scenario's feed, in an app of its own."""
    settings = harness_settings(redis_url, key_prefix, **scenario.settings)
    results: list[RunResult] = []
    async for harness in start_harness(settings, ManualClock(start=CLOCK_START)):
        await scenario.feed(harness)
        results.append(await harness.services.runner.run(MODEL))
    return results[0]
