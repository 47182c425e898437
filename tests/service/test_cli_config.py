"""`driftmon config check FILE`: the models YAML as the service reads it, errors by the
path of the bad field, and the effective configuration per model."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from core.alert_config import default_rules
from service.cli import build_cli
from service.config import Settings

MODELS_YAML = """\
models:
  - name: credit-risk
    drift_share: 0.3
    columns:
      income: {method: wasserstein, threshold: 0.15}
    alerts:
      - {name: drift, kind: dataset_drift}
      - {name: income, kind: column_drift, column: income, severity: critical}
    labeling: {enabled: false}
  - name: fraud
    schedule_seconds: 60
"""


def check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Result:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return CliRunner().invoke(build_cli(), ["config", "check", str(path)], env=env)


def test_a_valid_file_prints_each_models_effective_config(tmp_path: Path) -> None:
    result = check(tmp_path, MODELS_YAML, env={"DRIFTMON_WINDOW_SECONDS": "1800"})
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.stdout)
    credit, fraud = document["models"]
    assert credit["name"] == "credit-risk"
    assert credit["drift_share"] == 0.3  # its own
    assert credit["window_seconds"] == 1800  # the environment's setting
    assert credit["min_window_events"] == Settings().min_window_events  # the default
    assert credit["columns"]["income"]["method"] == "wasserstein"
    assert [rule["name"] for rule in credit["alerts"]] == ["drift", "income"]
    assert credit["labeling"]["enabled"] is False
    assert fraud["schedule_seconds"] == 60
    # a model without its own rules and labeling gets the settings' defaults
    assert [rule["name"] for rule in fraud["alerts"]] == [rule.name for rule in default_rules()]
    assert fraud["labeling"]["enabled"] == Settings().labeling.enabled
    assert document["defaults"]["window_seconds"] == 1800


def test_errors_name_the_path_of_the_bad_field_and_exit_2(tmp_path: Path) -> None:
    bad = MODELS_YAML.replace("severity: critical", "severity: critical, threshold: high")
    bad = bad.replace("schedule_seconds: 60", "schedule_seconds: -1")
    result = check(tmp_path, bad)
    assert result.exit_code == 2
    assert "models[credit-risk].alerts[1].threshold: Extra inputs are not permitted" in (
        result.stderr
    )
    assert "models[fraud].schedule_seconds: Input should be greater than 0" in result.stderr
    assert result.stdout == ""


def test_an_unknown_method_and_an_unknown_key_are_errors(tmp_path: Path) -> None:
    bad = MODELS_YAML.replace("method: wasserstein", "method: wasserstien")
    result = check(tmp_path, bad + "colour: red\n")
    assert result.exit_code == 2
    assert "models[credit-risk].columns.income.method" in result.stderr
    assert "wasserstien" in result.stderr
    assert "colour: Extra inputs are not permitted" in result.stderr


def test_a_rule_routed_to_an_unknown_channel_fails_as_at_start(tmp_path: Path) -> None:
    routed = MODELS_YAML.replace("kind: dataset_drift}", "kind: dataset_drift, channels: [ops]}")
    result = check(tmp_path, routed)
    assert result.exit_code == 2
    assert "models[credit-risk].alerts[0] (drift).channels: unknown channel(s) ['ops']" in (
        result.stderr
    )


def test_a_hashed_pii_column_needs_the_key_in_the_environment(tmp_path: Path) -> None:
    hashed = MODELS_YAML.replace("{method: wasserstein, threshold: 0.15}", "{pii: hash}")
    assert check(tmp_path, hashed).exit_code == 2
    with_key = check(tmp_path, hashed, env={"DRIFTMON_PII_HMAC_KEY": "k" * 32})
    assert with_key.exit_code == 0, with_key.output


def test_malformed_yaml_names_its_line(tmp_path: Path) -> None:
    result = check(tmp_path, "models:\n  - name: x\n   drift_share: [\n")
    assert result.exit_code == 2
    assert f"{tmp_path / 'models.yaml'}:3:" in result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["config", "check", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
