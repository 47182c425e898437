"""Unseen categories: a finding at any share above zero (info under the warning level),
never quoting the categories, and still capped per check."""

from __future__ import annotations

import pandas as pd
import pytest

from core.results import DataQuality, Finding
from core.schema import ModelSchema
from detectors.quality import IntakeRejects, data_quality, profile_reference

NO_REJECTS = IntakeRejects({}, {})
SCHEMA = ModelSchema(features={"region": "categorical"})
REFERENCE = pd.DataFrame({"region": ["EU", "US", "APAC"] * 100})


def quality_of(window_size: int, unseen: int, code: str = "MARS-7731") -> DataQuality:
    """A window of `window_size` known values, `unseen` of them replaced by `code`."""
    values = (["EU", "US", "APAC"] * window_size)[:window_size]
    values[:unseen] = [code] * unseen
    window = pd.DataFrame({"region": values})
    return data_quality(window, SCHEMA, profile_reference(REFERENCE, SCHEMA), NO_REJECTS)


def unseen_findings(quality: DataQuality) -> list[Finding]:
    return [f for f in quality.findings if f.check == "unseen_categories"]


@pytest.mark.parametrize(
    ("window_size", "unseen", "severity"),
    [
        (10_000, 1, "info"),  # 0.01%: rare, still news
        (1000, 9, "info"),  # 0.9%: just under the warning level
        (1000, 10, "warning"),  # 1%: today's warning level
        (1000, 99, "warning"),
        (1000, 100, "critical"),  # 10%
    ],
)
def test_an_unseen_category_is_a_finding_at_any_share(
    window_size: int, unseen: int, severity: str
) -> None:
    findings = unseen_findings(quality_of(window_size, unseen))
    assert [(f.column, f.severity) for f in findings] == [("region", severity)]
    assert findings[0].value == pytest.approx(unseen / window_size)


def test_no_unseen_category_is_no_finding() -> None:
    quality = quality_of(1000, 0)
    assert unseen_findings(quality) == []
    assert quality.worst_severity is None


def test_a_rare_unseen_category_makes_the_worst_severity_info() -> None:
    assert quality_of(1000, 1).worst_severity == "info"


@pytest.mark.parametrize(("window_size", "unseen"), [(10_000, 1), (1000, 5), (1000, 300)])
def test_the_message_never_quotes_the_category(window_size: int, unseen: int) -> None:
    (finding,) = unseen_findings(quality_of(window_size, unseen, code="alice@example.com"))
    assert "alice" not in finding.message
    assert finding.message.startswith("region: ")


def test_a_share_under_a_tenth_of_a_percent_does_not_read_as_zero() -> None:
    (finding,) = unseen_findings(quality_of(10_000, 1))
    assert "0.0%" not in finding.message
    assert "under 0.1%" in finding.message


def test_info_findings_are_capped_and_ranked_below_warnings() -> None:
    schema = ModelSchema(features={name: "categorical" for name in ("a", "b", "c")})
    reference = pd.DataFrame({name: ["x", "y"] * 50 for name in ("a", "b", "c")})
    window = pd.DataFrame({name: ["x", "y"] * 500 for name in ("a", "b", "c")})
    window.loc[:1, "a"] = "new"  # 0.2%: info
    window.loc[:49, "b"] = "new"  # 5%: warning
    window.loc[:4, "c"] = "new"  # 0.5%: info
    profile = profile_reference(reference, schema)
    quality = data_quality(window, schema, profile, NO_REJECTS, max_findings_per_check=2)
    kept = [(f.column, f.severity) for f in unseen_findings(quality)]
    assert kept == [("b", "warning"), ("c", "info")]
    assert quality.omitted_findings == {"unseen_categories": 1}
