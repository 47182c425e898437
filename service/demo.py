"""`driftmon demo`: a guided run of the real service on the bundled credit-risk sample.

It starts `driftmon serve` as a subprocess on an embedded Redis, talks to it over HTTP
like any client would, and checks the product's verdicts: no dataset drift on
training-like traffic, dataset drift on shifted traffic. The exit code says whether
both held, so `make demo` fails loudly when the product regresses."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.launch import free_port, serve_command, wait_until_ready
from service.sample_data.generate import (
    MODEL_NAME,
    REFERENCE_CSV,
    ground_truth,
    production_events,
)

EVENTS_PER_PHASE = 1500
BATCH_SIZE = 250
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# the first detection spawns a worker that imports Evidently; reports take a while too
REQUEST_TIMEOUT_SECONDS = 180.0
LOG_TAIL_LINES = 40
MARKER = ".driftmon-demo"
DEMO_DRIFT_SHARE = 0.3
MODELS_YAML = f"""\
# Written by `driftmon demo`. The demo's drifted traffic moves 3 of the 7 features
# (income, debt_ratio, region): under the default drift_share of 0.5 that would not
# count as dataset drift, so this model calls it drift from 30% of its columns on.
models:
  - name: {MODEL_NAME}
    drift_share: {DEMO_DRIFT_SHARE}
"""
SERVE_OPTIONS = (
    "--min-window-events",
    "200",
    "--window-max-events",
    str(EVENTS_PER_PHASE),
    "--detection-workers",
    "1",
    "--schedule-seconds",
    "3600",
)


class DemoError(RuntimeError):
    """A step of the demo did not get the answer it needs; the message says which."""


# -- the data dir ------------------------------------------------------------------------------


def prepare_data_dir(data_dir: Path) -> None:
    """An empty data dir, so every demo starts from the same state. Only a dir that an
    earlier demo made (it holds the marker) is deleted, never anything else."""
    if data_dir.exists():
        if (data_dir / MARKER).exists():
            ensure_not_in_use(data_dir)
            shutil.rmtree(data_dir)
        elif any(data_dir.iterdir()):
            raise DemoError(
                f"{data_dir} exists and was not made by `driftmon demo`; "
                "pass another --data-dir or remove it yourself"
            )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by `driftmon demo`; deleted by the next demo\n")


def ensure_not_in_use(data_dir: Path) -> None:
    """A server left by `driftmon demo --keep-serving` still holds the embedded Redis lock;
    deleting its files under it would corrupt it."""
    lock = data_dir / "redis" / "driftmon.lock"
    if not lock.exists():
        return
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read_text().strip() or "unknown"
            raise DemoError(
                f"a driftmon (pid {holder}) still runs on {data_dir}; stop it first"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


# -- the server subprocess ---------------------------------------------------------------------


def server_command(data_dir: Path, port: int) -> list[str]:
    return serve_command(
        port, data_dir, "--models-file", str(data_dir / "models.yaml"), *SERVE_OPTIONS
    )


def server_environment() -> dict[str, str]:
    """The caller's environment without DRIFTMON_* settings: the demo must run the same
    everywhere, and on its own embedded Redis (never a DRIFTMON_REDIS_URL)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("DRIFTMON_")}


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    (data_dir / "models.yaml").write_text(MODELS_YAML)
    with (data_dir / "driftmon.log").open("wb") as log:
        # a session of its own: Ctrl-C reaches only the demo, which then stops the server
        # with one SIGTERM (a second signal would make uvicorn skip its clean shutdown)
        return subprocess.Popen(
            server_command(data_dir, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            start_new_session=True,
        )


def log_tail(data_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    path = data_dir / "driftmon.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_server(base_url: str, server: subprocess.Popen[bytes]) -> bool:
    ready = wait_until_ready(
        base_url, server, READY_TIMEOUT_SECONDS, lambda: print(".", end="", flush=True)
    )
    if ready:
        print(" ready")
    elif server.poll() is not None:
        print(f" exited with code {server.returncode}")
    else:
        print(f" not ready after {READY_TIMEOUT_SECONDS:.0f} s")
    return ready


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait: driftmon then shuts its embedded Redis down cleanly."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"driftmon did not stop within {STOP_TIMEOUT_SECONDS:.0f} s; killing it")
        server.kill()
        server.wait()


def serve_until_stopped(server: subprocess.Popen[bytes]) -> None:
    try:
        server.wait()
    except KeyboardInterrupt:
        print("\nstopping driftmon...")
        stop_server(server)


# -- HTTP steps --------------------------------------------------------------------------------


def expect(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of an expected answer; anything else stops the demo, showing why."""
    if response.status_code not in statuses:
        raise DemoError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


def model_path(suffix: str = "") -> str:
    return f"/v1/models/{MODEL_NAME}{suffix}"


def upload_reference(client: httpx.Client) -> None:
    print(f"\n== 1. upload the training reference ({REFERENCE_CSV.name})")
    body = expect(
        client.put(
            model_path("/reference"),
            params={"prediction": "prediction", "scores": "score", "label": "label"},
            content=REFERENCE_CSV.read_bytes(),
            headers={"content-type": "text/csv"},
        ),
        201,
    )
    print(f"   version {body['version']}, {body['rows']} rows; columns:")
    for name, kind in body["columns"].items():
        print(f"     {name:<18} {kind}")
    print(f"   model config: drift_share {DEMO_DRIFT_SHARE} (from models.yaml in the data dir)")


def batches(events: list[dict[str, Any]], size: int = BATCH_SIZE) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def send_events(
    client: httpx.Client, events: list[dict[str, Any]], bad_records: list[dict[str, Any]]
) -> None:
    """The events as JSON arrays; bad_records ride along in the first batch."""
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[dict[str, Any]] = []
    for number, batch in enumerate(batches(events)):
        body = expect(
            client.post(model_path("/events"), json=batch if number else [*batch, *bad_records]),
            202,
        )
        for name in totals:
            totals[name] += body[name]
        errors.extend(body["errors"])
    print(
        f"   sent {len(events) + len(bad_records)} records in batches of about {BATCH_SIZE}: "
        f"{totals['accepted']} accepted, {totals['duplicates']} duplicates, "
        f"{totals['rejected']} rejected"
    )
    for error in errors:
        print(
            f"     rejected: record {error['index']} of its batch (202 all the same): "
            f"{error['error']}"
        )


def bad_income_record(like: dict[str, Any]) -> dict[str, Any]:
    """A record with income as text: it alone is rejected, by index and field."""
    return {
        **like,
        "event_id": "evt-bad-income",
        "features": {**like["features"], "income": "52k"},
    }


def post_labels(client: httpx.Client, labels: list[dict[str, Any]]) -> None:
    unknown = {"event_id": "evt-never-sent", "label": 1}
    body = expect(client.post(model_path("/labels"), json=[*labels, unknown]), 202)
    print(
        f"   ground truth for {len(labels)} sent events and 1 unknown id: "
        f"accepted {body['accepted']}, unknown {body['unknown']}"
    )


def run_detection(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = expect(client.post(model_path("/runs")), 200)
    return result


def save_report(client: httpx.Client, run_id: str, path: Path) -> str:
    url = model_path(f"/runs/{run_id}/report")
    response = client.get(url)
    if response.status_code != 200:
        raise DemoError(f"GET {url} answered {response.status_code}: {response.text[:500]}")
    path.write_bytes(response.content)
    return str(client.base_url.join(url))


def drift_score_lines(client: httpx.Client, limit: int = 8) -> list[str]:
    scrape = client.get("/metrics")
    scrape.raise_for_status()
    lines = [
        line for line in scrape.text.splitlines() if line.startswith("driftmon_column_drift_score")
    ]
    return lines[:limit]


# -- the run summary ---------------------------------------------------------------------------


def number(value: object, digits: int = 4) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.{digits}f}"


def verdict(drifted: object, status: str = "ok") -> str:
    if status != "ok":
        return status
    if drifted is None:
        return "-"
    return "DRIFTED  <<" if drifted else "ok"


def column_rows(columns: dict[str, Any]) -> list[str]:
    header = (
        f"     {'column':<18} {'kind':<12} {'method':<17} {'score':>8} {'threshold':>10}  verdict"
    )
    rows = [header, "     " + "-" * (len(header) - 5)]
    for name, column in columns.items():
        rows.append(
            f"     {name:<18} {column['kind']:<12} {column.get('method') or '-':<17} "
            f"{number(column.get('score')):>8} {number(column.get('threshold')):>10}  "
            f"{verdict(column.get('drifted'), column.get('status', 'ok'))}"
        )
    return rows


def section_row(title: str, section: object) -> str | None:
    """A one-line verdict of a prediction, confidence or multivariate section."""
    if not isinstance(section, dict) or "score" not in section:
        return None
    method = section.get("method") or "-"
    return (
        f"     {title:<31} {method:<17} {number(section.get('score')):>8} "
        f"{number(section.get('threshold')):>10}  {verdict(section.get('drifted'))}"
    )


def summary(result: dict[str, Any]) -> str:
    window = result["window"]
    lines = [
        f"   run {result['run_id']}: status {result['status']}, "
        f"{window['events']} events in the window (at least {result['min_window_events']} needed)"
    ]
    if result["status"] != "ok":
        lines.append(f"   {result.get('error') or 'no verdict'}")
        return "\n".join(lines)
    columns = result["columns"]
    drifted = sum(1 for column in columns.values() if column.get("drifted"))
    lines.append(
        f"   dataset drift: {'YES' if result['dataset_drift'] else 'no'} - "
        f"{drifted} of {len(columns)} columns drifted, share {number(result['drifted_share'], 2)}"
        f" vs threshold {number(result['drift_share_threshold'], 2)}"
    )
    lines.extend(column_rows(columns))
    prediction = result.get("prediction", {})
    extra = [
        section_row("prediction (class mix)", prediction.get("drift")),
        section_row("confidence", prediction.get("confidence")),
        section_row("multivariate (domain AUC)", result.get("multivariate")),
    ]
    lines.extend(row for row in extra if row is not None)
    return "\n".join(lines)


# -- the guided run ----------------------------------------------------------------------------


def first_phase(client: httpx.Client) -> dict[str, Any]:
    print(f"\n== 2. {EVENTS_PER_PHASE} events like the training data")
    events = production_events(EVENTS_PER_PHASE, seed=11, drift=False, start_index=0)
    print("   (the first batch carries one more record, with income as a string)")
    send_events(client, events, [bad_income_record(events[0])])
    post_labels(client, ground_truth(EVENTS_PER_PHASE, seed=11, drift=False, start_index=0)[:5])
    print("   running detection (first run warms up the worker)...")
    result = run_detection(client)
    print(summary(result))
    return result


def second_phase(client: httpx.Client) -> dict[str, Any]:
    print(f"\n== 3. {EVENTS_PER_PHASE} drifted events: income +0.8 std, EU->APAC, debt up")
    events = production_events(EVENTS_PER_PHASE, seed=12, drift=True, start_index=EVENTS_PER_PHASE)
    send_events(client, events, [])
    print(f"   running detection (the window holds the newest {EVENTS_PER_PHASE} events)...")
    result = run_detection(client)
    print(summary(result))
    return result


def show_outputs(client: httpx.Client, run_id: str, data_dir: Path) -> None:
    print("\n== 4. outputs")
    report = data_dir / "report.html"
    url = save_report(client, run_id, report)
    print(f"   Evidently report of the drifted run: {report}")
    print(f"     (served at {url} while driftmon runs)")
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


def guided_run(client: httpx.Client, data_dir: Path) -> int:
    upload_reference(client)
    first = first_phase(client)
    second = second_phase(client)
    show_outputs(client, second["run_id"], data_dir)
    failures = verdict_failures(first, second)
    if failures:
        print("\nDEMO FAILED: driftmon's verdicts are not the expected ones")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nverdicts as expected: no drift on training-like traffic, drift after the shift")
    return 0


@contextmanager
def running_server(data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The server for the duration of the block; stopped however the block ends."""
    server = start_server(data_dir, port)
    try:
        yield server
    finally:
        stop_server(server)


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
        running_server(data_dir, used_port) as server,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client,
    ):
        print("waiting for /readyz", end="", flush=True)
        if not wait_for_server(base_url, server):
            print(f"driftmon did not start; the end of its log:\n{log_tail(data_dir)}")
            return 1
        try:
            outcome = guided_run(client, data_dir)
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
    # `make serve` uses ./data, not the demo's dir: name the command that finds this data
    again = f"driftmon serve --data-dir {data_dir} --models-file {data_dir / 'models.yaml'}"
    print(f"driftmon stopped; data kept in {data_dir} (run it again: {again})")
    return outcome
