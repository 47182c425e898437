"""Replay computes what the service computes: the same history sent to the running app
chunk by chunk, each chunk alone in the window, gives the same verdicts as the offline
replay of its chunks; and the alert rules' k-of-n hysteresis plays out over the chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.alert_config import DatasetDriftRule
from core.clock import ManualClock
from core.config import ModelConfig
from core.results import RunResult
from service.config import Settings
from service.replay_chunks import ChunkPlan, cut_chunks
from tests.fixtures_app import harness_settings, start_harness
from tests.service.replay_fixtures import (
    UPLOAD_QUERY,
    api_event,
    credit_rows,
    history,
    iso_times,
    run_replay,
    write_models_file,
)

TOLERANCE = 1e-9
CHUNK_ROWS = 360
PERIOD = pd.Timedelta(hours=2)  # longer than the window (1 h): each run sees one chunk


def _close(service: float | None, replayed: float | None) -> bool:
    if service is None or replayed is None:
        return service is replayed
    return abs(service - replayed) <= TOLERANCE


def assert_same_verdicts(service: RunResult, replayed: RunResult) -> None:
    assert (service.status, replayed.status) == ("ok", "ok")
    assert service.window.events == replayed.window.events
    assert service.columns.keys() == replayed.columns.keys()
    for name, ours in replayed.columns.items():
        theirs = service.columns[name]
        assert (theirs.method, theirs.drifted, theirs.status) == (
            ours.method,
            ours.drifted,
            ours.status,
        ), name
        assert _close(theirs.score, ours.score), (name, theirs.score, ours.score)
        assert _close(theirs.threshold, ours.threshold), name
        assert _close(theirs.missing_share, ours.missing_share), name
    assert _close(service.drifted_share, replayed.drifted_share)
    assert service.dataset_drift == replayed.dataset_drift
    assert service.prediction.drift is not None
    assert replayed.prediction.drift is not None
    assert _close(service.prediction.drift.score, replayed.prediction.drift.score)
    assert service.multivariate is not None
    assert replayed.multivariate is not None
    assert _close(service.multivariate.score, replayed.multivariate.score)
    assert service.data_quality is not None
    assert replayed.data_quality is not None
    theirs_findings = [(f.column, f.check, f.severity) for f in service.data_quality.findings]
    ours_findings = [(f.column, f.check, f.severity) for f in replayed.data_quality.findings]
    assert theirs_findings == ours_findings
    for theirs_finding, ours_finding in zip(
        service.data_quality.findings, replayed.data_quality.findings, strict=True
    ):
        assert _close(float(theirs_finding.value), float(ours_finding.value))
    assert service.performance is not None
    assert replayed.performance is not None
    assert service.performance.model_dump() == replayed.performance.model_dump()


def _history_with_quality_issues() -> pd.DataFrame:
    start = pd.Timestamp("2026-01-05T00:00:00Z")
    spacing = PERIOD / CHUNK_ROWS
    frame = history([(CHUNK_ROWS, 0.0), (CHUNK_ROWS, 0.0), (CHUNK_ROWS, 12.0)], start, spacing)
    second = CHUNK_ROWS
    frame.loc[second : second + 29, "region"] = "MARS"
    frame.loc[second + 30 : second + 49, "income"] = np.nan
    frame.loc[second + 50 : second + 59, "age"] = 150.0
    return frame


async def test_replay_numbers_equal_the_services_runs_of_the_same_windows(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    reference_csv = tmp_path / "reference.csv"
    credit_rows(3000, seed=1).to_csv(reference_csv, index=False)
    frame = _history_with_quality_issues()
    data = tmp_path / "history.csv"
    frame.to_csv(data, index=False)
    settings = harness_settings(redis_url, key_prefix)

    replayed = run_replay(settings, reference_csv, data, ChunkPlan(period="2h"))

    assert [chunk.events for chunk in replayed] == [CHUNK_ROWS] * 3
    # the comparison covers findings and drift, not only quiet windows
    assert replayed[1].run.data_quality is not None
    checks = {finding.check for finding in replayed[1].run.data_quality.findings}
    assert {"unseen_categories", "out_of_range", "missing_values"} <= checks
    assert replayed[2].run.columns["age"].drifted
    first_end = pd.Timestamp("2026-01-05T00:00:00Z") + PERIOD
    clock = ManualClock(start=first_end.timestamp())
    async for harness in start_harness(settings, clock):
        uploaded = await harness.client.put(
            "/v1/models/credit/reference",
            params=UPLOAD_QUERY,
            content=reference_csv.read_bytes(),
            headers={"content-type": "text/csv"},
        )
        assert uploaded.json()["version"] == replayed[0].run.reference_version
        for chunk in replayed:
            rows = frame.iloc[chunk.chunk * CHUNK_ROWS : (chunk.chunk + 1) * CHUNK_ROWS]
            events = [
                api_event(row, index)
                for index, row in zip(rows.index, rows.to_dict("records"), strict=True)
            ]
            posted = await harness.client.post("/v1/models/credit/events", json=events)
            assert posted.json()["accepted"] == CHUNK_ROWS, posted.text
            answer = await harness.client.post("/v1/models/credit/runs")
            assert answer.status_code == 200, answer.text
            assert_same_verdicts(RunResult.model_validate(answer.json()), chunk.run)
            clock.advance(PERIOD.total_seconds())


def _hysteresis_models_file(tmp_path: Path) -> Path:
    rule = DatasetDriftRule(name="drift-twice", kind="dataset_drift", fire_after=2, resolve_after=2)
    # a high threshold: 150-row chunks are noisy, the drifted ones are far over it
    model = ModelConfig(
        name="credit", min_window_events=100, drift_share=0.3, drift_threshold=0.5, alerts=[rule]
    )
    return write_models_file(tmp_path / "models.yaml", [model])


def test_alerts_fire_after_k_drifted_chunks_and_resolve_after_m_clean_ones(
    tmp_path: Path,
) -> None:
    reference_csv = tmp_path / "reference.csv"
    credit_rows(3000, seed=1).to_csv(reference_csv, index=False)
    drifts = [False, True, False, True, True, False, True, False, False]
    data = tmp_path / "history.csv"
    history([(150, 15.0 if drifted else 0.0) for drifted in drifts], None, PERIOD).to_csv(
        data, index=False
    )
    settings = Settings(multivariate_enabled=False)

    chunks = run_replay(
        settings,
        reference_csv,
        data,
        ChunkPlan(size=150),
        models_file=_hysteresis_models_file(tmp_path),
    )

    assert [chunk.dataset_drift for chunk in chunks] == drifts
    fired = [chunk.chunk for chunk in chunks if chunk.transitions("firing")]
    resolved = [chunk.chunk for chunk in chunks if chunk.transitions("resolved")]
    # one drifted chunk (1) stays pending; two in a row (3, 4) fire; one clean chunk (5)
    # between drifts does not resolve; two clean ones (7, 8) do
    assert fired == [4]
    assert resolved == [8]
    assert [bool(chunk.firing) for chunk in chunks] == [
        False, False, False, False, True, True, True, True, False,
    ]  # fmt: skip
    assert chunks[4].transitions("firing")[0].rule == "drift-twice"
    # the run's own streak counts consecutive drifted chunks, as the runner does
    assert [chunk.run.dataset_drift_streak for chunk in chunks] == [0, 1, 0, 1, 2, 0, 1, 0, 0]


@pytest.mark.parametrize(
    ("plan", "sizes"),
    [
        (ChunkPlan(size=250), [250, 250, 100]),
        # 6 h periods from the first event's midnight: 01:00-06:00, then an empty period
        (ChunkPlan(period="6h"), [300, 0, 300]),
    ],
)
def test_chunks_by_rows_and_by_period(plan: ChunkPlan, sizes: list[int]) -> None:
    start, minute = pd.Timestamp("2026-03-01T01:00:00Z"), pd.Timedelta(minutes=1)
    first = credit_rows(300, seed=3).assign(timestamp=iso_times(start, minute, 300))
    late_start = start + pd.Timedelta(hours=12)
    late = credit_rows(300, seed=4).assign(timestamp=iso_times(late_start, minute, 300))
    # out of order on purpose: replay plays the history in time order
    frame = pd.concat([late, first], ignore_index=True)

    chunks = cut_chunks(frame, plan, schedule_seconds=300.0)

    assert [len(chunk.rows) for chunk in chunks] == sizes
    times = pd.concat([chunk.rows["timestamp"] for chunk in chunks])
    assert times.is_monotonic_increasing
    assert [chunk.run_at for chunk in chunks] == sorted(chunk.run_at for chunk in chunks)


def test_stray_text_is_rejected_alone_and_an_empty_period_has_too_few_events(
    tmp_path: Path,
) -> None:
    reference_csv = tmp_path / "reference.csv"
    credit_rows(3000, seed=1).to_csv(reference_csv, index=False)
    minute = pd.Timedelta(minutes=1)
    start = pd.Timestamp("2026-04-01T00:00:00Z")
    first = history([(300, 0.0)], start, minute / 10)
    last = history([(300, 0.0)], start + 2 * pd.Timedelta(hours=1), minute / 10)
    frame = pd.concat([first, last], ignore_index=True).astype({"age": object})
    frame.loc[[5, 6, 7], "age"] = "forty"
    data = tmp_path / "history.csv"
    frame.to_csv(data, index=False)

    chunks = run_replay(
        Settings(multivariate_enabled=False, min_window_events=100),
        reference_csv,
        data,
        ChunkPlan(period="1h"),
    )

    assert [(chunk.events, chunk.rejected) for chunk in chunks] == [(297, 3), (0, 0), (300, 0)]
    quality = chunks[0].run.data_quality
    assert quality is not None
    assert [(f.column, f.check, f.value) for f in quality.findings] == [("age", "type_mismatch", 3)]
    assert [chunk.run.status for chunk in chunks] == ["ok", "insufficient_data", "ok"]
