import json, time
from tests.fixtures_app import harness_settings, start_harness, upload_credit_reference
from tests.data import credit_events

async def test_x(redis_url, key_prefix):
    s = harness_settings(redis_url, key_prefix, alert_fire_after=1, alert_resolve_after=1,
        alert_rules=[{"name": "inputs-drifted", "kind": "dataset_drift"}, {"name": "age-drift", "kind": "column_drift", "column": "age"}])
    async for h in start_harness(s):
        await upload_credit_reference(h.client)
        r = await h.client.post("/v1/models/credit/events", json=credit_events(300, seed=3, age_shift=10))
        print(r.status_code)
        t=time.perf_counter()
        run = (await h.client.post("/v1/models/credit/runs")).json()
        print("run took", time.perf_counter()-t, run["status"], run.get("dataset_drift"), {k: v.get("drifted") for k,v in run["columns"].items()})
        print(json.dumps((await h.client.get("/v1/alerts")).json(), indent=1))
        print(json.dumps((await h.client.get("/v1/models/credit")).json()["firing_alerts"])[:300])
        h.clock.advance(4000)
        await h.client.post("/v1/models/credit/events", json=credit_events(300, seed=4))
        run = (await h.client.post("/v1/models/credit/runs")).json()
        print(run["status"], run.get("dataset_drift"))
        print(json.dumps((await h.client.get("/v1/alerts")).json(), indent=1)[:1500])
        print(await h.services.stores.outbox.depth())
