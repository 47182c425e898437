from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import DRIFT_METHODS, load_models_file
from detectors.evidently_compat import registered_methods
from service.config import Settings


def test_known_methods_are_evidentlys() -> None:
    assert registered_methods() >= DRIFT_METHODS


def test_models_file_loads_and_rejects_unknown_methods(tmp_path: Path) -> None:
    good = tmp_path / "models.yaml"
    good.write_text(
        "models:\n"
        "  - name: credit-risk\n"
        "    drift_share: 0.3\n"
        "    drift_method: psi\n"
        "    columns:\n"
        "      income: {method: ks, threshold: 0.01}\n"
    )
    models = load_models_file(good)
    assert models["credit-risk"].columns["income"].method == "ks"
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    columns:\n      x: {method: kss}\n")
    with pytest.raises(ValidationError, match="unknown drift method 'kss'"):
        load_models_file(bad)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTMON_PORT", "9001")
    monkeypatch.setenv("DRIFTMON_STREAMS", '{"predictions": "credit"}')
    settings = Settings()
    assert settings.port == 9001
    assert settings.streams == {"predictions": "credit"}
