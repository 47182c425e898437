"""docs/metrics.md and a live scrape list the same metrics."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures_app import Harness

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
SUFFIXES = {"counter": "_total", "histogram": "", "gauge": "", "info": "_info"}


async def test_catalogue_matches_a_live_scrape(harness: Harness) -> None:
    scrape = (await harness.client.get("/metrics")).text
    exported = {
        family.name + SUFFIXES.get(family.type, "")
        for family in text_string_to_metric_families(scrape)
        if family.name.startswith("driftmon_")
    }
    documented = set(re.findall(r"^\| `(driftmon_[a-z_]+)`", CATALOGUE.read_text(), re.MULTILINE))
    assert exported - documented == set(), "exported but not in docs/metrics.md"
    assert documented - exported == set(), "in docs/metrics.md but not exported"
