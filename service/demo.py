"""`driftmon demo`: a guided run of the real service on the bundled credit-risk sample.

It starts `driftmon serve` as a subprocess on an embedded Redis, talks to it over HTTP
like any client would, and checks the product's verdicts: no dataset drift on
training-like traffic, dataset drift on shifted traffic, and alerts that reach a local
receiver (signed webhooks and a Slack message) when the drift fires and again when it
resolves. The exit code says whether all of it held, so `make demo` fails loudly when
the product regresses.

The parts: what it runs (demo_scenario), the server subprocess (demo_server), the local
receiver (demo_receiver), the HTTP steps (demo_client), the printed run summaries
(demo_summary) and alerts (demo_alerts); the story is here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from service.demo_alerts import (
    await_deliveries,
    show_alert_list,
    show_deliveries,
    slack_texts,
)
from service.demo_client import (
    drift_score_lines,
    post_labels,
    run_detection,
    save_plot,
    save_report,
    send_events,
    upload_reference,
)
from service.demo_labeling import (
    labeling_round,
    performance_lines,
    show_agreement,
    show_queue,
)
from service.demo_receiver import Inbox, receiving
from service.demo_scenario import (
    EVENTS_PER_PHASE,
    WEBHOOK_SECRET_ENV,
    DemoError,
    bad_income_record,
    models_yaml,
)
from service.demo_server import (
    log_tail,
    prepare_data_dir,
    running_server,
    serve_until_stopped,
    wait_for_server,
)
from service.demo_summary import summary
from service.launch import free_port
from service.sample_data.generate import ground_truth, production_events

# the first detection spawns a worker that imports Evidently; reports take a while too
REQUEST_TIMEOUT_SECONDS = 180.0


# -- the guided run ----------------------------------------------------------------------------


def first_phase(client: httpx.Client) -> dict[str, Any]:
    print(f"\n== 2. {EVENTS_PER_PHASE} events like the training data")
    events = production_events(EVENTS_PER_PHASE, seed=11, drift=False, start_index=0)
    print("   (the first batch carries one more record, with income as a string)")
    send_events(client, events, [bad_income_record(events[0])])
    post_labels(client, ground_truth(EVENTS_PER_PHASE, seed=11, drift=False, start_index=0)[:5])
    return detect(client, "first run warms up the worker")


def second_phase(client: httpx.Client) -> dict[str, Any]:
    print(f"\n== 3. {EVENTS_PER_PHASE} drifted events: income +0.8 std, EU->APAC, debt up")
    events = production_events(EVENTS_PER_PHASE, seed=12, drift=True, start_index=EVENTS_PER_PHASE)
    send_events(client, events, [])
    return detect(client, f"the window holds the newest {EVENTS_PER_PHASE} events")


def detect(client: httpx.Client, note: str) -> dict[str, Any]:
    print(f"   running detection ({note})...")
    result = run_detection(client)
    print(summary(result))
    return result


def drifted_alerts(client: httpx.Client, inbox: Inbox) -> list[str]:
    print("\n== 4. alerts the drift raised, as the team's receiver got them")
    received = await_deliveries(inbox, "firing", seen_slack=0)
    failures = show_deliveries(received, "firing", seen_slack=0)
    show_alert_list(client)
    return failures


def labeling(client: httpx.Client) -> list[str]:
    print("\n== 5. the labeling queue the drifted run filled, and one round of labels")
    if show_queue(client) == 0:
        return ["the drifted run queued no samples for labeling"]
    # the simulated annotators know the truth of both phases' events (both runs flagged)
    truth = ground_truth(EVENTS_PER_PHASE, seed=11, drift=False, start_index=0)
    truth += ground_truth(EVENTS_PER_PHASE, seed=12, drift=True, start_index=EVENTS_PER_PHASE)
    labeling_round(client, {row["event_id"]: row["label"] for row in truth})
    kappa = show_agreement(client)
    result = detect(client, "the same window, now with the queue's labels")
    performance = result.get("performance") or {}
    from_queue = performance.get("labels_from_queue", 0)
    print(performance_lines(performance))
    failures = [] if from_queue else ["the next run used none of the queue's labels"]
    return failures + ([] if kappa is not None else ["no agreement figure for two annotators"])


def recovery(client: httpx.Client, inbox: Inbox) -> tuple[dict[str, Any], list[str]]:
    print(f"\n== 6. {EVENTS_PER_PHASE} training-like events again: the alerts resolve")
    start = 2 * EVENTS_PER_PHASE
    send_events(
        client, production_events(EVENTS_PER_PHASE, seed=13, drift=False, start_index=start), []
    )
    result = detect(client, "the window holds only the new, clean events")
    seen_slack = len(slack_texts(inbox.snapshot()))
    received = await_deliveries(inbox, "resolved", seen_slack)
    failures = show_deliveries(received, "resolved", seen_slack)
    show_alert_list(client)
    return result, failures


def show_outputs(client: httpx.Client, run_id: str, data_dir: Path) -> None:
    print("\n== 7. outputs")
    report = data_dir / "report.html"
    url = save_report(client, run_id, report)
    print(f"   report of the drifted run (summary, then Evidently's sections): {report}")
    print(f"     (served at {url} while driftmon runs)")
    picture = data_dir / "drift.png"
    plot_url = save_plot(client, run_id, picture)
    print(f"   drift scores of the runs so far against their thresholds: {picture}")
    print(f"     (served at {plot_url})")
    print(f"   Prometheus metrics: {client.base_url.join('/metrics')}")
    for line in drift_score_lines(client):
        print(f"     {line}")


def verdict_failures(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    failures = []
    if first["status"] != "ok" or first["dataset_drift"] is not False:
        failures.append(
            f"run 1 (training-like traffic) should find no dataset drift; got status "
            f"{first['status']}, dataset_drift {first['dataset_drift']}"
        )
    if second["status"] != "ok" or second["dataset_drift"] is not True:
        failures.append(
            f"run 2 (drifted traffic) should find dataset drift; got status "
            f"{second['status']}, dataset_drift {second['dataset_drift']}"
        )
    return failures


def guided_run(client: httpx.Client, data_dir: Path, inbox: Inbox) -> int:
    upload_reference(client)
    first = first_phase(client)
    second = second_phase(client)
    failures = verdict_failures(first, second) + drifted_alerts(client, inbox)
    failures += labeling(client)
    third, resolved = recovery(client, inbox)
    show_outputs(client, second["run_id"], data_dir)
    if third["status"] != "ok" or third["dataset_drift"] is not False:
        failures.append(f"run 3 (clean again) should find no dataset drift; got {third['status']}")
    failures += resolved
    if failures:
        print("\nDEMO FAILED: driftmon did not do what it should")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(
        "\nas expected: no drift on training-like traffic, drift after the shift, alerts "
        "delivered signed when it fired and again when it resolved, the flagged samples "
        "labeled and their labels in the next run's performance"
    )
    return 0


def run_demo(data_dir: Path, port: int | None, keep_serving: bool) -> int:
    """Start driftmon, send it clean then drifted traffic, show the verdicts. 0 when
    they are the expected ones."""
    try:
        prepare_data_dir(data_dir)
    except DemoError as exc:
        print(f"driftmon demo: {exc}")
        return 1
    used_port = port or free_port()
    base_url = f"http://127.0.0.1:{used_port}"
    print(f"starting driftmon on {base_url} (embedded Redis in {data_dir}, log in driftmon.log)")
    with (
        receiving() as (inbox, receiver_port),
        running_server(
            data_dir,
            used_port,
            models_yaml(receiver_port),
            {WEBHOOK_SECRET_ENV: inbox.secret},
        ) as server,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client,
    ):
        print("waiting for /readyz", end="", flush=True)
        if not wait_for_server(base_url, server):
            print(f"driftmon did not start; the end of its log:\n{log_tail(data_dir)}")
            return 1
        try:
            outcome = guided_run(client, data_dir, inbox)
        except (DemoError, httpx.HTTPError, ValueError) as exc:  # ValueError: a non-JSON answer
            print(f"\nDEMO FAILED: {exc}\nthe end of driftmon's log:\n{log_tail(data_dir)}")
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted; stopping driftmon")
            return 130
        if keep_serving:
            print(f"\ndriftmon keeps serving on {base_url} (pid {server.pid}).")
            print(f"Stop it with Ctrl-C here, or: kill {server.pid}")
            serve_until_stopped(server)
        # `make serve` uses ./data, not the demo's dir: name the command that finds this
        # data (its models file reads the webhook secret from the environment)
        again = (
            f"{WEBHOOK_SECRET_ENV}='{inbox.secret}' driftmon serve --data-dir {data_dir} "
            f"--models-file {data_dir / 'models.yaml'}"
        )
    print(f"driftmon stopped; data kept in {data_dir} (run it again: {again})")
    return outcome
