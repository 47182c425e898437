"""The alerts and silences API through the running app on the test Redis: a drifted run
fires, a clean one resolves, silences hide notifications, a deleted model takes its
alerts along, and a bad alert configuration stops the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from tests.data import credit_events
from tests.fixtures_app import start_harness, upload_credit_reference
from tests.service.alert_fixtures import (
    AGE_ALERT,
    AGE_RULE,
    DATASET_ALERT,
    DATASET_RULE,
    MODEL,
    RULES,
    SECRET_ENV,
    Receiver,
    WallClock,
    alert_settings,
    calm,
    drained,
    drift,
    receiver,
    transitions,
    until,
    webhook_channel,
    webhook_secret,
)

__all__ = ["receiver", "webhook_secret"]  # fixtures, used by name


async def alerts(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["alerts"]
    return found


def ids(found: list[dict[str, Any]]) -> set[str]:
    return {f"{a['model']}/{a['rule']}/{a['column'] or ''}" for a in found}


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def silence(client: httpx.AsyncClient, body: dict[str, Any] | bytes) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.post(
            "/v1/silences", content=body, headers={"content-type": "application/json"}
        )
    return await client.post("/v1/silences", json=body)


def error_field(response: httpx.Response) -> str:
    field: str = response.json()["detail"]["field"]
    return field


async def test_a_drifted_run_fires_and_a_clean_run_resolves(
    redis_url: str, key_prefix: str
) -> None:
    settings = alert_settings(redis_url, key_prefix, [], RULES)
    async for app in start_harness(settings, WallClock()):
        assert await alerts(app.client) == []
        run = await drift(app, reference=True)
        # another model firing too, for the filters to leave out
        await upload_credit_reference(app.client, model="other")
        other = await app.client.post(
            "/v1/models/other/events", json=credit_events(300, 7, age_shift=25)
        )
        assert other.status_code == 202, other.text
        assert (await app.client.post("/v1/models/other/runs")).status_code == 200

        everything = await alerts(app.client)
        assert ids(everything) >= {DATASET_ALERT, AGE_ALERT, "other/age-drift/age"}
        mine = await alerts(app.client, model=MODEL)
        assert ids(mine) == {DATASET_ALERT, AGE_ALERT}
        (dataset,) = [a for a in mine if a["rule"] == DATASET_RULE]
        assert dataset["state"] == "firing"
        assert dataset["column"] is None
        assert dataset["last_run_id"] == run["run_id"]
        assert dataset["since"] == dataset["fired_at"]
        assert dataset["since"].endswith("Z")
        assert dataset["value"] == pytest.approx(2 / 3)
        assert dataset["threshold"] == pytest.approx(0.5)
        assert "dataset drift" in dataset["summary"]
        (age,) = [a for a in mine if a["rule"] == AGE_RULE]
        assert age["value"] > age["threshold"] > 0
        assert "age" in age["summary"]
        assert age["severity"] == "critical"

        assert ids(await alerts(app.client, model=MODEL, state="firing")) == ids(mine)
        assert await alerts(app.client, state="pending") == []
        assert await alerts(app.client, state="resolved") == []
        bad = await app.client.get("/v1/alerts", params={"state": "inactive"})
        assert bad.status_code == 422, bad.text
        described = (await app.client.get(f"/v1/models/{MODEL}")).json()
        assert ids(described["firing_alerts"]) == {DATASET_ALERT, AGE_ALERT}

        clean = await calm(app)
        resolved = await alerts(app.client, model=MODEL, state="resolved")
        assert ids(resolved) == {DATASET_ALERT, AGE_ALERT}
        assert all(a["last_run_id"] == clean["run_id"] for a in resolved)
        assert all(a["since"] > dataset["since"] for a in resolved)
        assert await alerts(app.client, model=MODEL, state="firing") == []
        described = (await app.client.get(f"/v1/models/{MODEL}")).json()
        assert described["firing_alerts"] == []
        # the other model's alerts fire on
        others = {alert for alert in ids(everything) if alert.startswith("other/")}
        assert ids(await alerts(app.client, state="firing")) == others


async def test_silences_are_validated_listed_and_deleted(redis_url: str, key_prefix: str) -> None:
    settings = alert_settings(redis_url, key_prefix, [], RULES)
    async for app in start_harness(settings, WallClock()):
        await upload_credit_reference(app.client)
        good = {"model": MODEL, "rule": DATASET_RULE, "until": in_an_hour(), "comment": "deploy"}

        unknown_model = await silence(app.client, {**good, "model": "nobody"})
        assert unknown_model.status_code == 404, unknown_model.text
        unknown_rule = await silence(app.client, {**good, "rule": "no-such-rule"})
        assert unknown_rule.status_code == 422, unknown_rule.text
        assert error_field(unknown_rule) == "rule"
        assert DATASET_RULE in unknown_rule.text  # the hint lists the model's rules
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        ended = await silence(app.client, {**good, "until": past})
        assert ended.status_code == 422, ended.text
        assert error_field(ended) == "until"
        naive = await silence(app.client, {**good, "until": "2099-01-01T00:00:00"})
        assert naive.status_code == 422, naive.text
        assert error_field(naive) == "until"
        broken = await silence(app.client, b'{"model": "credit",')
        assert broken.status_code == 400, broken.text
        for missing in ("model", "rule", "until"):
            body = {key: value for key, value in good.items() if key != missing}
            response = await silence(app.client, body)
            assert response.status_code == 422, response.text
            assert error_field(response) == missing
        assert (await app.client.get("/v1/silences")).json()["silences"] == []

        created = await silence(app.client, {**good, "column": None})
        assert created.status_code == 201, created.text
        made = created.json()
        assert (made["model"], made["rule"], made["comment"]) == (MODEL, DATASET_RULE, "deploy")
        listed = (await app.client.get("/v1/silences")).json()["silences"]
        assert [s["id"] for s in listed] == [made["id"]]

        assert (await app.client.delete("/v1/silences/no-such-id")).status_code == 404
        assert (await app.client.delete(f"/v1/silences/{made['id']}")).status_code == 204
        assert (await app.client.get("/v1/silences")).json()["silences"] == []
        assert (await app.client.delete(f"/v1/silences/{made['id']}")).status_code == 404


async def test_a_silenced_alert_changes_state_but_nobody_hears_of_it(
    redis_url: str, key_prefix: str, receiver: Receiver, webhook_secret: str
) -> None:
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)], RULES)
    async for app in start_harness(settings, WallClock()):
        await upload_credit_reference(app.client)
        body = {"model": MODEL, "rule": DATASET_RULE, "until": in_an_hour()}
        assert (await silence(app.client, body)).status_code == 201

        await drift(app)
        firing = await alerts(app.client, model=MODEL, state="firing")
        assert ids(firing) == {DATASET_ALERT, AGE_ALERT}
        # the unsilenced alert's notification arrives: the dispatcher is at work
        await until(lambda: AGE_ALERT in transitions(receiver), "the age alert's notification")
        await drained(app)
        assert transitions(receiver) == {AGE_ALERT: ["firing"]}

        await calm(app)
        assert ids(await alerts(app.client, state="resolved")) == {DATASET_ALERT, AGE_ALERT}
        await until(
            lambda: transitions(receiver).get(AGE_ALERT) == ["firing", "resolved"], "resolved"
        )
        await drained(app)
        assert DATASET_ALERT not in transitions(receiver)


async def test_deleting_a_model_drops_its_alerts_and_silences(
    redis_url: str, key_prefix: str
) -> None:
    settings = alert_settings(redis_url, key_prefix, [], RULES)
    async for app in start_harness(settings, WallClock()):
        await drift(app, reference=True)
        await upload_credit_reference(app.client, model="other")
        for model in (MODEL, "other"):
            body = {"model": model, "rule": AGE_RULE, "column": "age", "until": in_an_hour()}
            assert (await silence(app.client, body)).status_code == 201
        assert ids(await alerts(app.client)) == {DATASET_ALERT, AGE_ALERT}

        assert (await app.client.delete(f"/v1/models/{MODEL}")).status_code == 204
        assert await alerts(app.client) == []
        assert await alerts(app.client, model=MODEL) == []
        kept = (await app.client.get("/v1/silences")).json()["silences"]
        assert [s["model"] for s in kept] == ["other"]
        assert (await app.client.get(f"/v1/models/{MODEL}")).status_code == 404


# --- a bad alert configuration stops the start ---------------------------------------------


async def start_error(settings: Settings) -> str:
    app = create_app(settings, clock=WallClock())
    with pytest.raises(Exception) as failure:  # noqa: PT011 - any error, naming the field
        async with app.router.lifespan_context(app):
            pass
    return str(failure.value)


async def test_an_invalid_alerts_section_fails_the_start_naming_its_path(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - name: credit\n    alerts:\n      - name: weird\n        kind: nonsense\n"
    )
    settings = alert_settings(redis_url, key_prefix, [], models_file=models)
    error = await start_error(settings)
    assert "models.0.alerts.0" in error, error
    assert "nonsense" in error, error


async def test_a_rule_naming_an_unknown_channel_fails_the_start(
    redis_url: str, key_prefix: str, tmp_path: Path, receiver: Receiver, webhook_secret: str
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  - name: credit\n"
        "    alerts:\n"
        "      - name: inputs-drifted\n"
        "        kind: dataset_drift\n"
        "        channels: [team-webhook, pager-nowhere]\n"
    )
    channels = [webhook_channel(receiver)]
    error = await start_error(alert_settings(redis_url, key_prefix, channels, models_file=models))
    assert "pager-nowhere" in error, error
    assert "inputs-drifted" in error, error


async def test_a_webhook_channel_whose_secret_is_unset_fails_the_start(
    redis_url: str, key_prefix: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    settings = alert_settings(redis_url, key_prefix, [webhook_channel(receiver)])
    error = await start_error(settings)
    assert SECRET_ENV in error, error
    assert "team-webhook" in error, error
    # set, the same configuration starts
    monkeypatch.setenv(SECRET_ENV, "a-plain-secret-of-32-characters!")
    async for app in start_harness(settings, WallClock()):
        assert (await app.client.get("/v1/alerts")).status_code == 200
