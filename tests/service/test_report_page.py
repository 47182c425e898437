"""A drifted run's report through the app: the summary opens it and shows every value of
the run's JSON, then Evidently's sections; its history picture links the plot route."""

from __future__ import annotations

from urllib.parse import urljoin

from service.report_table import cell
from tests.data import credit_events
from tests.fixtures_app import Harness, upload_credit_reference
from tests.service.test_detection_api import labeled_reference_csv
from tests.service.test_report_summary import leaves

SUMMARY_START = '<section id="driftmon-summary">'


async def drifted_run(harness: Harness) -> dict[str, object]:
    """A run with every section: drift, quality findings, two model versions, labels,
    KPIs; returns its JSON as the API gives it."""
    client = harness.client
    response = await client.put(
        "/v1/models/credit/reference",
        params={"prediction": "prediction", "scores": "score", "label": "label"},
        content=labeled_reference_csv(),
    )
    assert response.status_code == 201, response.text
    events = credit_events(400, seed=21, age_shift=12)
    for index, event in enumerate(events):
        event["model_version"] = "v2-canary" if index % 4 == 0 else "v1"
    events[0]["features"] = {"age": "forty", "income": 1.0, "region": "MARS"}
    events[1]["features"] = {"age": 40.0, "shoe_size": 44}
    assert (await client.post("/v1/models/credit/events", json=events)).status_code == 202
    labels = [{"event_id": e["event_id"], "label": i % 2} for i, e in enumerate(events[:120])]
    assert (await client.post("/v1/models/credit/labels", json=labels)).status_code == 202
    now = harness.clock.now()
    before = now - harness.settings.window_seconds - 600
    kpis = [
        {"name": "approval_rate", "value": 0.6, "timestamp": before},
        {"name": "approval_rate", "value": 0.45, "timestamp": now - 60},
    ]
    assert (await client.post("/v1/models/credit/kpis", json=kpis)).status_code == 202
    run: dict[str, object] = (await client.post("/v1/models/credit/runs")).json()
    assert run["dataset_drift"] is True
    for section in ("performance", "data_quality", "multivariate", "kpis"):
        assert run[section], section
    return run


def summary_of(page: str) -> str:
    start = page.index(SUMMARY_START)
    return page[start : page.index("</section>", start)]


async def test_the_report_opens_with_a_summary_of_every_value_of_the_run(
    harness: Harness,
) -> None:
    run = await drifted_run(harness)
    url = f"http://driftmon/v1/models/credit/runs/{run['run_id']}/report"
    response = await harness.client.get(url)
    assert response.status_code == 200
    page = response.text
    summary = summary_of(page)
    checked = 0
    for path, value in leaves(run):
        assert cell(value) in summary, f"{path} = {value!r} is not in the summary"
        checked += 1
    assert checked > 100
    for name in ("age", "income", "region", "v2-canary", "approval_rate", "shoe_size"):
        assert name in summary
    # the summary comes first in the body, Evidently's dashboard after it
    body = page.index("<body>")
    assert body < page.index(SUMMARY_START) < page.index('<div id="root_')
    head = page[: page.index("</head>")]
    assert f"<title>credit · run {run['run_id']}</title>" in head
    # the latest-run report is the same page, and its picture's relative link works there
    latest_url = "http://driftmon/v1/models/credit/runs/latest/report"
    latest = (await harness.client.get(latest_url)).text
    assert summary_of(latest) == summary
    src = summary.split('<img src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    for base in (url, latest_url):
        picture = await harness.client.get(urljoin(base, src))
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
        assert picture.url.path == f"/v1/models/credit/runs/{run['run_id']}/plot.png"


async def test_a_report_of_an_unknown_run_is_404(harness: Harness) -> None:
    await upload_credit_reference(harness.client)
    missing = await harness.client.get("/v1/models/credit/runs/nope/report")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]["error"]
