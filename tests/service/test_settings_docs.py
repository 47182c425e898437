"""The README's settings table lists every setting, so none exists undocumented."""

from __future__ import annotations

import re
from pathlib import Path

from service.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_variables() -> set[str]:
    return set(re.findall(r"^\| `(DRIFTMON_[A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))


def test_every_setting_has_a_row_in_the_readme() -> None:
    variables = {f"DRIFTMON_{name.upper()}" for name in Settings.model_fields}
    assert variables - documented_variables() == set(), "settings missing from README.md"


def test_the_readme_lists_no_setting_that_does_not_exist() -> None:
    variables = {f"DRIFTMON_{name.upper()}" for name in Settings.model_fields}
    assert documented_variables() - variables == set(), "README.md names unknown settings"
