"""Every benchmark in one run: one table, `bench/results/latest.json`, and the table in
`docs/benchmarks.md` refreshed between its markers.

    python -m bench.run_all [--full] [--only window_bench ...] [--no-docs]

Each module of `BENCHES` runs in a child process of this one (a fresh interpreter:
one bench's thread limits, caches and garbage never reach the next), through
`run(quick)` as bench/common.py describes; its output goes to
`bench/results/<name>.log`. A module that is not there yet is skipped with the reason;
one that fails is reported as failed, and the others still run. `--full` passes
`quick=False` (the long sizes; `make bench` runs the quick ones, under 10 minutes on
2 cores).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table

from bench.common import Figure

BENCHES = (
    "bench.window_bench",
    "bench.memory_bench",
    "bench.detection_bench",
    "bench.stream_bench",
    "bench.intake_latency_bench",
    "bench.http_intake_bench",
    "bench.fleet_bench",
    "bench.scrape_bench",
    "bench.alerts_bench",
    "bench.labeling_bench",
)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TIMEOUT_SECONDS = 900  # one bench, even with --full
FIGURES = TypeAdapter(list[Figure])


class Outcome(BaseModel):
    """What one benchmark module gave."""

    module: str
    status: Literal["ok", "skipped", "failed"]
    reason: str = ""
    seconds: float = 0.0
    figures: list[Figure] = []


class Machine(BaseModel):
    cores: int
    cpu: str
    load_average: tuple[float, float, float]  # at the start of the run
    load_average_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    date: str
    python: str


class Report(BaseModel):
    machine: Machine
    quick: bool
    seconds: float
    outcomes: list[Outcome]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def this_machine() -> Machine:
    return Machine(
        cores=os.cpu_count() or 0,
        cpu=cpu_model(),
        load_average=os.getloadavg(),
        date=datetime.date.today().isoformat(),
        python=platform.python_version(),
    )


# --- one bench, in a child process ----------------------------------------------------------


def child_main(module: str, quick: bool, out: Path) -> None:
    """In the child: import `module`, call its `run`, write its figures as JSON."""
    loaded = importlib.import_module(module)
    figures = [as_figure(item) for item in loaded.run(quick)]
    out.write_bytes(FIGURES.dump_json(figures))


def as_figure(item: object) -> Figure:
    """A bench's figure as bench.common's `Figure`; a figure class of the bench's own is
    read by attribute, with its baseline as `baseline_name` and `baseline` (the value)
    if it spells them so."""
    if isinstance(item, Figure):
        return item
    fields = {name: getattr(item, name) for name in Figure.model_fields if hasattr(item, name)}
    if hasattr(item, "baseline_name"):
        fields["baseline"] = item.baseline_name or None
        fields["baseline_value"] = getattr(item, "baseline", None) or None
    ratio = fields.get("ratio")
    if not isinstance(ratio, int | float) or ratio != ratio:  # absent, or NaN
        value, baseline = fields.get("value"), fields.get("baseline_value")
        fields["ratio"] = value / baseline if value is not None and baseline else None
    fields["target"] = fields.get("target") or None
    return Figure.model_validate(fields)


def missing_reason(module: str) -> str | None:
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError as error:
        return str(error)
    return None if found is not None else f"no module {module} yet"


def run_bench(module: str, quick: bool, results: Path) -> Outcome:
    """The module's `run` in a fresh interpreter; its output to results/<name>.log."""
    reason = missing_reason(module)
    if reason is not None:
        return Outcome(module=module, status="skipped", reason=reason)
    name = module.rsplit(".", 1)[-1]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, open(results / f"{name}.log", "wb") as log:
        out = Path(tmp) / "figures.json"
        command = [sys.executable, "-m", "bench.run_all", "--child", module, str(out)]
        command += [] if quick else ["--full"]
        try:
            done = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            return failed(module, f"over {TIMEOUT_SECONDS} s", began)
        if done.returncode != 0 or not out.exists():
            return failed(module, f"exit {done.returncode}; see bench/results/{name}.log", began)
        figures = FIGURES.validate_json(out.read_bytes())
    seconds = time.perf_counter() - began
    return Outcome(module=module, status="ok", seconds=seconds, figures=figures)


def failed(module: str, reason: str, began: float) -> Outcome:
    seconds = time.perf_counter() - began
    return Outcome(module=module, status="failed", reason=reason, seconds=seconds)


# --- the table ------------------------------------------------------------------------------


def number(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0 or 0.01 <= abs(value) < 100:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2e}"


def verdict(figure: Figure) -> str:
    return {True: "met", False: "**missed**", None: ""}[figure.met]


def short(module: str) -> str:
    return module.rsplit(".", 1)[-1]


ROW_HEADERS = ("bench", "figure", "driftmon", "baseline (same run)", "ratio", "target", "")


def rows(report: Report) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = []
    for outcome in report.outcomes:
        if outcome.status != "ok":
            table.append((short(outcome.module), f"{outcome.status}: {outcome.reason}"))
            continue
        for figure in outcome.figures:
            baseline = (
                f"{figure.baseline}: {number(figure.baseline_value)} {figure.unit}".strip()
                if figure.baseline
                else ""
            )
            ratio = f"{figure.ratio:.3g}x" if figure.ratio is not None else ""
            table.append(
                (
                    short(outcome.module),
                    figure.name,
                    f"{number(figure.value)} {figure.unit}".strip(),
                    baseline,
                    ratio,
                    figure.target or "",
                    verdict(figure),
                )
            )
    return table


def print_table(report: Report, console: Console) -> None:
    table = Table(title="driftmon benchmarks", show_lines=False)
    for header in ROW_HEADERS:
        table.add_column(header or "met", overflow="fold")
    for row in rows(report):
        table.add_row(*(cell.replace("**", "") for cell in row))
    console.print(table)


def markdown(report: Report) -> str:
    machine = report.machine
    load = ", ".join(f"{value:.2f}" for value in machine.load_average)
    load_end = ", ".join(f"{value:.2f}" for value in machine.load_average_end)
    mode = "quick sizes (`make bench`)" if report.quick else "full sizes (`--full`)"
    lines = [
        f"Measured {machine.date} on {machine.cores} cores ({machine.cpu}), Python "
        f"{machine.python}, {mode}, in {report.seconds / 60:.1f} minutes; load average "
        f"(1, 5, 15 min) {load} at the start, {load_end} at the end (above "
        f"{machine.cores}, other work was sharing the machine).",
        "",
        "| " + " | ".join(header or "target met" for header in ROW_HEADERS) + " |",
        "|" + "---|" * len(ROW_HEADERS),
    ]
    for row in rows(report):
        cells = [cell.replace("|", "\\|") for cell in row]
        lines.append("| " + " | ".join(cells + [""] * (len(ROW_HEADERS) - len(cells))) + " |")
    lines += ["", "Where the time goes, for the slowest stage of each figure:", ""]
    for outcome in report.outcomes:
        for figure in outcome.figures:
            if figure.where_the_time_goes.strip("- "):
                lines.append(f"- **{figure.name}**: {figure.where_the_time_goes}")
    return "\n".join(lines)


def refresh_docs(report: Report, docs: Path) -> None:
    """Replaces what is between the markers; the rest of the file is prose kept as is."""
    text = docs.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{docs} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    docs.write_text(f"{head}{BEGIN}\n{markdown(report)}\n{END}{tail}")


# --- the whole run --------------------------------------------------------------------------


def run_all(modules: Sequence[str], quick: bool, results: Path, console: Console) -> Report:
    machine = this_machine()
    results.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    outcomes = []
    for index, module in enumerate(modules, 1):
        with console.status(f"[{index}/{len(modules)}] {short(module)} ..."):
            outcome = run_bench(module, quick, results)
        outcomes.append(outcome)
        detail = f"{len(outcome.figures)} figures" if outcome.status == "ok" else outcome.reason
        console.print(
            f"[{index}/{len(modules)}] {short(module)}: {outcome.status} "
            f"({outcome.seconds:.0f} s) {detail}",
            markup=False,
        )
    machine = machine.model_copy(update={"load_average_end": os.getloadavg()})
    report = Report(
        machine=machine, quick=quick, seconds=time.perf_counter() - began, outcomes=outcomes
    )
    (results / "latest.json").write_text(report.model_dump_json(indent=2))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the long sizes (quick=False)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="MODULE",
        help="these modules only (bench.X, X for one of bench/)",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    parser.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("MODULE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child[0], not args.full, Path(args.child[1]))
        return 0
    modules: tuple[str, ...] = BENCHES
    if args.only:
        modules = tuple(
            f"bench.{name}" if f"bench.{name}" in BENCHES else name for name in args.only
        )
    # a wide table when the output is a file or a pipe (rich would wrap it at 80)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    report = run_all(modules, not args.full, args.results, console)
    print_table(report, console)
    if not args.no_docs:
        refresh_docs(report, args.docs)
        console.print(f"table refreshed in {args.docs}", markup=False)
    failures = [outcome for outcome in report.outcomes if outcome.status == "failed"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
