"""`driftmon replay` on the command line: the table, JSON, CSV and plot it writes, its
exit codes (1 when a chunk has dataset drift), and input errors that name their flag."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from service.cli_replay import replay
from tests.service.replay_fixtures import credit_rows, history

# fast: no domain classifier; 500-row chunks keep sampling noise under the thresholds
# (a third of the columns drifting is dataset drift: the age column alone drifts)
ENV = {
    "DRIFTMON_MULTIVARIATE_ENABLED": "false",
    "DRIFTMON_MIN_WINDOW_EVENTS": "100",
    "DRIFTMON_DRIFT_SHARE": "0.3",
}
ROLES = ["--prediction", "prediction", "--scores", "score", "--label", "label"]
START = pd.Timestamp("2026-02-01T00:00:00Z")
HOUR = pd.Timedelta(hours=1)
ROWS = 500


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("replay")
    reference = folder / "reference.csv"
    credit_rows(3000, seed=1).to_csv(reference, index=False)
    # three hours: clean, then the age of customers up by 15 years
    drifting = history([(ROWS, 0.0), (ROWS, 15.0), (ROWS, 15.0)], START, HOUR / ROWS)
    clean = history([(ROWS, 0.0), (ROWS, 0.0)], START, HOUR / ROWS)
    paths = {
        "reference": reference,
        "drifting": folder / "drifting.csv",
        "clean": folder / "clean.ndjson",
        "folder": folder,
    }
    drifting.to_csv(paths["drifting"], index=False)
    clean.to_json(paths["clean"], orient="records", lines=True)
    return paths


def invoke(*args: object) -> Result:
    return CliRunner().invoke(replay, [str(arg) for arg in args], env=ENV)


def test_drift_exits_1_with_a_table_json_and_plot(files: dict[str, Path]) -> None:
    out, plot = files["folder"] / "results.json", files["folder"] / "drift.png"
    reference, data = files["reference"], files["drifting"]
    args = ["--reference", reference, "--data", data, "--chunk-period", "1h", *ROLES]

    result = invoke(*args, "--out", out, "--plot", plot)

    assert result.exit_code == 1, result.output
    assert "drifted columns" in result.stdout
    assert "age" in result.stdout
    assert "dataset drift in chunks 1, 2" in result.stdout
    records = json.loads(out.read_text())
    assert [record["chunk"] for record in records] == [0, 1, 2]
    assert [record["run"]["dataset_drift"] for record in records] == [False, True, True]
    assert records[1]["run"]["columns"]["age"]["drifted"] is True
    assert records[2]["run"]["performance"]["labeled_events"] == ROWS
    assert Image.open(plot).format == "PNG"


def test_csv_has_one_row_per_chunk_and_column(files: dict[str, Path]) -> None:
    out = files["folder"] / "results.csv"
    reference, data = files["reference"], files["drifting"]

    result = invoke(
        "--reference", reference, "--data", data, "--chunk-size", ROWS, *ROLES, "--out", out
    )

    assert result.exit_code == 1, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 3  # chunks x feature columns (age, income, region)
    drifted = {(row["chunk"], row["column"]) for row in rows if row["drifted"] == "True"}
    assert ("1", "age") in drifted
    assert ("0", "age") not in drifted
    assert {row["method"] for row in rows} >= {"wasserstein", "jensenshannon"}


def test_no_drift_exits_0_on_ndjson(files: dict[str, Path]) -> None:
    reference, data = files["reference"], files["clean"]

    result = invoke("--reference", reference, "--data", data, "--chunk-period", "1h", *ROLES)

    assert result.exit_code == 0, result.output
    assert "no dataset drift" in result.stdout


def _error_cases(files: dict[str, Path]) -> list[tuple[list[str | Path], str]]:
    reference, data, folder = files["reference"], files["drifting"], files["folder"]
    unreadable = folder / "broken.parquet"
    unreadable.write_bytes(b"not parquet at all")
    models = folder / "models.yaml"
    models.write_text("models:\n  - name: other\n")
    base: list[str | Path] = ["--reference", reference, "--data", data]
    period: list[str | Path] = [*base, "--chunk-period", "1h"]
    return [
        ([*base], "--chunk-size and --chunk-period"),
        ([*period, "--chunk-size", "10"], "--chunk-size and --chunk-period"),
        (
            ["--reference", reference, "--data", folder / "missing.csv", "--chunk-size", "10"],
            "--data",
        ),
        (["--reference", unreadable, "--data", data, "--chunk-size", "10"], "--reference"),
        (["--reference", folder / "ref.txt", "--data", data, "--chunk-size", "10"], "--reference"),
        ([*base, "--chunk-period", "one day"], "--chunk-period"),
        ([*period, "--prediction", "no_such_column"], "--prediction"),
        ([*period, "--timestamp-column", "when"], "--timestamp-column"),
        ([*period, "--out", folder / "results.xlsx"], "--out"),
        ([*period, "--models-file", models], "--model"),
        ([*period, "--models-file", models, "--model", "credit"], "--model"),
        ([*period, "--models-file", folder / "none.yaml", "--model", "credit"], "--models-file"),
    ]


def test_input_errors_exit_2_naming_the_flag(files: dict[str, Path]) -> None:
    for args, flag in _error_cases(files):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert flag in result.output, (args, result.output)
