"""The drift gauges' text cached per model (service/metrics_text.py): the same text as
prometheus_client renders from the collector's families, valid for promtool with several
models, rendered again only for a model whose snapshot changed, and without the models
left out."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.results import ColumnResult, RunResult, WindowInfo
from service.metrics import Metrics
from service.metrics_gauges import LatestRunsCollector, ModelSnapshot
from service.metrics_text import PerModelExposition
from tests.data import credit_events
from tests.fixtures_app import Harness, upload_credit_reference
from tests.observability.scrape import promtool


class Families(Collector):
    def __init__(self, collector: LatestRunsCollector) -> None:
        self._collector = collector

    def collect(self) -> Iterator[Metric]:
        return iter(self._collector.collect())


def rendered_afresh(collector: LatestRunsCollector) -> str:
    """The text prometheus_client renders from every family built anew."""
    return generate_latest(Families(collector)).decode()


def synthetic_run(model: str, run_id: str, width: int, score: float) -> RunResult:
    columns = {
        f"col_{i:02d}": ColumnResult(
            kind="num",
            method="wasserstein",
            score=score * i,
            threshold=0.1,
            drifted=score * i > 0.1,
            missing_share=0.01 * i,
        )
        for i in range(width)
    }
    now = datetime.now(UTC).isoformat()
    return RunResult(
        run_id=run_id,
        model=model,
        status="ok",
        started_at=now,
        window=WindowInfo(start=now, end=now, events=100 * width),
        drifted_share=0.5,
        columns=columns,
    )


async def detected_run(harness: Harness, model: str, seed: int) -> RunResult:
    """A run of the real detection: prediction, quality and every section it fills."""
    await upload_credit_reference(harness.client, model)
    events = credit_events(300, seed=seed, age_shift=15, prefix=f"{model}-{seed}")
    accepted = await harness.client.post(f"/v1/models/{model}/events", json=events)
    assert accepted.status_code == 202, accepted.text
    answer = await harness.client.post(f"/v1/models/{model}/runs")
    run = RunResult.model_validate(answer.json())
    assert run.status == "ok", answer.text
    return run


async def test_cached_text_is_what_prometheus_client_renders(harness: Harness) -> None:
    credit = await detected_run(harness, "credit", 5)
    fraud = await detected_run(harness, "fraud", 6)
    collector = LatestRunsCollector(max_columns=4)
    wide = synthetic_run("wide", "wide-1", width=9, score=0.02)  # over the cap
    snapshots = {
        "credit": ModelSnapshot(credit, credit, 300.0, created_at=1_700_000_000.0),
        "wide": ModelSnapshot(wide, wide, 60.0),
        "fraud": ModelSnapshot(fraud, None, 120.0),
        "new": ModelSnapshot(None, None, 30.0, created_at=1_700_000_500.0),
    }
    collector.update(snapshots)
    first = collector.exposition()
    assert first == rendered_afresh(collector)
    assert 'driftmon_column_drift_score{column="age",method=' in first

    newer = synthetic_run("wide", "wide-2", width=9, score=0.03)
    collector.update({**snapshots, "wide": ModelSnapshot(newer, newer, 60.0)})
    assert collector.exposition() == rendered_afresh(collector)
    assert 'driftmon_window_events{model="wide"} 900.0' in collector.exposition()

    collector.update({name: snapshots[name] for name in ("new", "credit")})  # order changed
    again = collector.exposition()
    assert again == rendered_afresh(collector)
    assert 'model="wide"' not in again
    assert 'model="fraud"' not in again


def test_promtool_accepts_the_gauges_of_several_models() -> None:
    path = promtool()
    metrics = Metrics(CollectorRegistry(), "test", max_columns=10)
    runs = [synthetic_run(f"m{i}", f"m{i}-1", width=6, score=0.03) for i in range(3)]
    metrics.latest.update({run.model: ModelSnapshot(run, run, 60.0, 1.0) for run in runs})
    text = metrics.exposition().decode()
    checked = subprocess.run(
        [path, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # promtool exits 3 for lint findings (e.g. naming advice) and 1 for a broken format
    assert checked.returncode in (0, 3), checked.stderr
    assert "error" not in checked.stderr.lower(), checked.stderr
    for name in ("driftmon_column_drift_score", "driftmon_events_total", "driftmon_build_info"):
        assert text.count(f"# TYPE {name} ") == 1


class CountingFamilies:
    """families_of for one gauge of a number per model, counting the models it renders."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def __call__(self, snapshots: Mapping[str, float]) -> Iterator[Metric]:
        self.rendered += snapshots.keys()
        family = GaugeMetricFamily("test_value", "A value per model.", labels=["model"])
        for model, value in snapshots.items():
            family.add_metric([model], value)
        yield family


def test_only_changed_snapshots_are_rendered_again() -> None:
    families = CountingFamilies()
    text = PerModelExposition(families, lambda old, new: old == new)
    text.render({"a": 1.0, "b": 2.0})
    families.rendered.clear()

    out = text.render({"a": 1.0, "b": 3.0, "c": 4.0})
    assert families.rendered == ["b", "c"]
    assert out.endswith(
        'test_value{model="a"} 1.0\ntest_value{model="b"} 3.0\ntest_value{model="c"} 4.0\n'
    )
    assert out.count("# HELP test_value ") == 1


def test_families_that_depend_on_the_models_are_refused() -> None:
    def families_of(snapshots: Mapping[str, float]) -> Iterator[Metric]:
        for model in snapshots:
            yield GaugeMetricFamily(f"test_{model}", "One family per model.", value=1.0)

    text = PerModelExposition(families_of, lambda old, new: old == new)
    with pytest.raises(ValueError, match="'x'"):
        text.render({"x": 1.0})
