"""The `make bench` harness, run on a tiny fake bench module that returns known figures
(in a real child process, as for the real benches), and the shape of every bench."""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from bench import run_all
from bench.common import Figure, at_least, at_most

FAKE_MODULE = "fake_bench_for_tests"
FAKE_SOURCE = """
from bench.common import Figure, at_least, at_most


def run(quick: bool = False) -> list[Figure]:
    print("fake bench running, quick =", quick)
    return [
        Figure.compare(
            "fast thing", 30.0, "req/s", baseline="no-op", baseline_value=40.0,
            target=at_least(0.6), where_the_time_goes="parsing the body",
        ),
        Figure.compare(
            "slow thing", 9.0, "ms", baseline="idle", baseline_value=2.0,
            target=at_most(3.0), where_the_time_goes="waiting for the lock",
        ),
    ]
"""
BROKEN_MODULE = "broken_bench_for_tests"
DOCS = """# Benchmarks

Prose before, kept.

<!-- bench:begin -->
an old table
<!-- bench:end -->

Prose after, kept.
"""


@pytest.fixture
def fake_benches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two bench modules importable here and in the harness's child processes."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / f"{FAKE_MODULE}.py").write_text(FAKE_SOURCE)
    (modules / f"{BROKEN_MODULE}.py").write_text("def run(quick=False):\n    raise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(modules))
    root = str(Path(run_all.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", f"{modules}:{root}")
    return tmp_path


def harness(tmp_path: Path, *modules: str) -> tuple[int, Path, Path]:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(DOCS)
    results = tmp_path / "results"
    argv = ["--only", *modules, "--results", str(results), "--docs", str(docs)]
    return run_all.main(argv), results, docs


def test_the_json_holds_the_fake_benchs_figures(fake_benches: Path) -> None:
    code, results, _ = harness(fake_benches, FAKE_MODULE)

    assert code == 0
    report = run_all.Report.model_validate_json((results / "latest.json").read_text())
    (outcome,) = report.outcomes
    assert outcome.status == "ok"
    assert report.quick is True
    fast, slow = outcome.figures
    assert (fast.name, fast.value, fast.baseline_value) == ("fast thing", 30.0, 40.0)
    assert fast.ratio == pytest.approx(30.0 / 40.0)
    assert fast.met is True
    assert slow.ratio == pytest.approx(9.0 / 2.0)
    assert slow.met is False
    assert report.machine.cores >= 1
    assert "quick = True" in (results / f"{FAKE_MODULE}.log").read_text()


def test_the_docs_table_is_replaced_between_the_markers_only(fake_benches: Path) -> None:
    _, _, docs = harness(fake_benches, FAKE_MODULE)

    text = docs.read_text()
    assert "an old table" not in text
    assert text.startswith("# Benchmarks\n\nProse before, kept.\n\n<!-- bench:begin -->\n")
    assert text.endswith("<!-- bench:end -->\n\nProse after, kept.\n")
    between = text.split("<!-- bench:begin -->")[1].split("<!-- bench:end -->")[0]
    fast_row = next(line for line in between.splitlines() if "fast thing" in line)
    slow_row = next(line for line in between.splitlines() if "slow thing" in line)
    assert "0.75x" in fast_row
    assert "missed" not in fast_row
    assert "4.5x" in slow_row
    assert "**missed**" in slow_row
    assert "- **slow thing**: waiting for the lock" in between
    assert f"{run_all.this_machine().cores} cores" in between


def test_a_missing_module_is_skipped_and_a_failing_one_reported(fake_benches: Path) -> None:
    code, results, docs = harness(fake_benches, "no_such_bench_module", BROKEN_MODULE)

    assert code == 1  # a bench failed
    report = json.loads((results / "latest.json").read_text())
    missing, broken = report["outcomes"]
    assert missing["status"] == "skipped"
    assert "no_such_bench_module" in missing["reason"]
    assert broken["status"] == "failed"
    assert "exit 3" in broken["reason"]
    assert "skipped: " in docs.read_text()


def test_a_table_needs_its_markers(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# no markers here\n")
    report = run_all.Report(machine=run_all.this_machine(), quick=True, seconds=1.0, outcomes=[])

    with pytest.raises(ValueError, match="markers"):
        run_all.refresh_docs(report, docs)


def test_targets_judge_the_ratio_or_the_value() -> None:
    on_ratio = Figure.compare("a", 5.0, "ms", baseline_value=2.0, target=at_most(3.0))
    on_value = Figure.compare("b", 150.0, "ms", target=at_most(200, on_value=True))
    no_target = Figure.compare("c", 1.0, "s", baseline_value=4.0)

    assert (on_ratio.target, on_ratio.met) == ("≤ 3x", True)
    assert (on_value.target, on_value.met) == ("≤ 200 ms", True)
    assert Figure.compare("d", 0.5, "x", baseline_value=1.0, target=at_least(0.6)).met is False
    assert (no_target.ratio, no_target.met) == (0.25, None)


@pytest.mark.parametrize("module", run_all.BENCHES)
def test_every_bench_module_exposes_run(module: str) -> None:
    if run_all.missing_reason(module) is not None:
        pytest.skip(f"{module} is not written yet")
    loaded = importlib.import_module(module)

    quick, *others = inspect.signature(loaded.run).parameters.values()
    assert quick.name == "quick"
    assert quick.default is False
    assert all(other.default is not inspect.Parameter.empty for other in others)


def test_the_table_prints(fake_benches: Path) -> None:
    report = run_all.run_all([FAKE_MODULE], True, fake_benches / "r", Console(width=200))
    console = Console(record=True, width=200)

    run_all.print_table(report, console)

    assert "fast thing" in console.export_text()


@dataclass(frozen=True)
class ForeignFigure:
    """A bench's own figure class, spelling its baseline differently."""

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str
    met: bool | None


def test_a_figure_of_a_benchs_own_class_is_read_by_attribute() -> None:
    foreign = ForeignFigure("single POST", 800.0, "req/s", "no-op endpoint", 4000.0, "", None)

    figure = run_all.as_figure(foreign)

    assert (figure.baseline, figure.baseline_value) == ("no-op endpoint", 4000.0)
    assert figure.ratio == pytest.approx(0.2)
    assert (figure.target, figure.met) == (None, None)
