"""`driftmon audit`: exit 0 on a clean file, 1 on findings, 2 on usage and input errors
naming the argument or flag; --out writes the typed audit, --plot a two-panel PNG."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from matplotlib.image import imread

from core.dataset_audit import DatasetAudit
from service.cli_audit import audit
from service.plots_audit import audit_figure
from tests.audit_data import clean_training_set, with_exact_duplicates

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(audit, [str(arg) for arg in args])


@pytest.fixture
def clean_csv(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    clean_training_set().to_csv(path, index=False)
    return path


@pytest.fixture
def duplicated_csv(tmp_path: Path) -> Path:
    path = tmp_path / "dupes.csv"
    with_exact_duplicates(clean_training_set(), [1, 2]).to_csv(path, index=False)
    return path


def test_a_clean_file_exits_0(clean_csv: Path) -> None:
    result = run(clean_csv, "--label", "label")
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output
    assert "2000 rows" in result.output


def test_findings_exit_1_and_are_listed(duplicated_csv: Path) -> None:
    result = run(duplicated_csv, "--label", "label")
    assert result.exit_code == 1, result.output
    assert "2 rows repeat an earlier row exactly" in result.output


def test_out_writes_the_typed_audit(duplicated_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    result = run(duplicated_csv, "--label", "label", "--out", out)
    assert result.exit_code == 1, result.output
    written = DatasetAudit.model_validate_json(out.read_text())
    assert written.rows == 2002
    assert written.duplicates.exact_rows == 2
    assert [finding.kind for finding in written.findings] == ["exact_duplicates"]


def test_plot_is_a_png_of_two_panels(clean_csv: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "audit.json", tmp_path / "audit.png"
    result = run(clean_csv, "--label", "label", "--out", out, "--plot", plot)
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(PNG_MAGIC)
    height, width, _ = imread(plot).shape
    assert width > height > 0
    figure = audit_figure(DatasetAudit.model_validate_json(out.read_text()))
    assert len(figure.axes) == 2
    missing_panel, balance_panel = figure.axes
    assert len(missing_panel.patches) == 6  # a bar per column
    assert len(balance_panel.patches) == 2  # a bar per class


def test_plot_without_a_label_still_has_two_panels(clean_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    assert run(clean_csv, "--out", out).exit_code == 0
    figure = audit_figure(DatasetAudit.model_validate_json(out.read_text()))
    assert len(figure.axes) == 2
    assert "not applicable" in figure.axes[1].texts[0].get_text()


def test_parquet_and_ndjson_read_as_the_csv_does(clean_csv: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(clean_csv)
    frame.to_parquet(tmp_path / "train.parquet")
    frame.to_json(tmp_path / "train.ndjson", orient="records", lines=True)
    for name in ("train.parquet", "train.ndjson"):
        out = tmp_path / f"{name}.json"
        result = run(tmp_path / name, "--label", "label", "--out", out)
        assert result.exit_code == 0, result.output
        assert DatasetAudit.model_validate_json(out.read_text()).rows == len(frame)


def test_against_a_shifted_file_exits_1(clean_csv: Path, tmp_path: Path) -> None:
    other = clean_training_set(seed=12)
    other["income"] += 20_000
    other.to_csv(tmp_path / "serving.csv", index=False)
    result = run(clean_csv, "--label", "label", "--against", tmp_path / "serving.csv")
    assert result.exit_code == 1, result.output
    assert "drifted columns: income" in result.output


def test_ignore_leaves_a_column_out(duplicated_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    assert run(duplicated_csv, "--ignore", "id", "--ignore", "noise", "--out", out).exit_code == 1
    names = [column.name for column in DatasetAudit.model_validate_json(out.read_text()).columns]
    assert "id" not in names
    assert "noise" not in names


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["missing.csv"], "FILE"),
        (["{clean}", "--label", "target"], "--label"),
        (["{clean}", "--ignore", "nope"], "--ignore"),
        (["{clean}", "--label", "label", "--ignore", "label"], "--ignore"),
        (["{garbage}"], "FILE"),
        (["{empty}"], "FILE"),
        (["{header_only}"], "FILE"),
        (["{unknown_suffix}"], "FILE"),
        (["{clean}", "--against", "{garbage}"], "--against"),
        (["{clean}", "--leakage-auc", "1.5"], "--leakage-auc"),
        (["{clean}", "--near-digits", "0"], "--near-digits"),
    ],
)
def test_usage_and_input_errors_exit_2_naming_the_flag(
    args: list[str], named: str, clean_csv: Path, tmp_path: Path
) -> None:
    files = {
        "clean": clean_csv,
        "garbage": tmp_path / "broken.parquet",
        "empty": tmp_path / "empty.csv",
        "header_only": tmp_path / "header.csv",
        "unknown_suffix": tmp_path / "train.xlsx",
    }
    files["garbage"].write_bytes(b"PAR1 this is not parquet")
    files["empty"].write_text("")
    files["header_only"].write_text("a,b\n")
    files["unknown_suffix"].write_text("a,b\n1,2\n")
    argv = [arg.format(**files) if arg.startswith("{") else arg for arg in args]
    if argv[0] == "missing.csv":
        argv[0] = str(tmp_path / "missing.csv")
    result = run(*argv)
    assert result.exit_code == 2, result.output
    assert named in result.output
