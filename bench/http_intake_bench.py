"""HTTP intake against bare endpoints, and cold start, all measured in one run.

Load comes from `wrk` (its Lua scripts are written into a temporary folder; each request
gets a new event id from a counter in `request`). The baselines are a no-op POST and an
orjson parse-only POST of a bare FastAPI app (bench/baseline_app.py) served by the same
uvicorn, loop, HTTP protocol and venv as `driftmon serve`, which runs on its own embedded
Redis with a reference of 20 numerical and 5 categorical features.

    python -m bench.http_intake_bench [--quick] [--compare /path/to/other/checkout]

`--compare` measures a second source tree's `driftmon serve` in the same run (before and
after a change), with the same venv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import CATEGORICAL, NUMERICAL, Figure, at_least, at_most
from bench.detection_bench import reference_frame
from service.launch import free_port, serve_command, wait_until_ready

MODEL = "http-bench"
HERE = Path(__file__).resolve().parent.parent
SINGLE_CONNECTIONS = 16
BATCH_CONNECTIONS = 4
BATCH_EVENTS = 1000
FEATURE_VARIANTS = 64  # distinct feature objects the scripts cycle through
SINGLE_RATE_TARGET = 0.6  # at least this share of the no-op endpoint's req/s
SINGLE_P99_TARGET = 3.0  # p99 at most this many times the no-op endpoint's
BATCH_RATE_TARGET = 0.35  # events/s at least this share of the parse-only endpoint's
COLD_START_TARGET = 1.5  # the first detection at most this many times the second
# from py-spy on the live server under wrk (this bench's single-event load)
SINGLE_TIME_GOES = (
    "FastAPI/Starlette layers and the two auth dependencies (~45% of the loop), the "
    "append script's round trip (~15%), uvicorn's socket writes (~14%)"
)


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class ServerFigures:
    single: WrkResult
    batch: WrkResult
    ready_seconds: float
    first_detection_seconds: float
    second_detection_seconds: float


def feature_variants() -> list[str]:
    """JSON feature objects, deterministic, so every run sends the same data."""
    variants = []
    for v in range(FEATURE_VARIANTS):
        numbers = {
            name: round(((v * 7 + i * 13) % 97) / 24.0 - 2.0, 4) for i, name in enumerate(NUMERICAL)
        }
        labels = ("alpha", "beta", "gamma", "delta")
        texts = {name: labels[(v + i) % 4] for i, name in enumerate(CATEGORICAL)}
        variants.append(json.dumps({**numbers, **texts}, separators=(",", ":")))
    return variants


def lua_script(path: str, events_per_body: int | None, prefix: str) -> str:
    """A wrk script POSTing one event (events_per_body None) or an array of events, each
    with a new id, and printing its figures as one JSON line at the end."""
    variants = ",".join(json.dumps(v) for v in feature_variants())
    if events_per_body is None:
        body = "event(counter)"
    else:
        body = f'"[" .. batch(counter, {events_per_body}) .. "]"'
    return f"""
local counter = 0
local variants = {{{variants}}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local function event(n)
  return '{{"event_id":"{prefix}-' .. n .. '","features":' .. variants[n % #variants + 1] .. '}}'
end
local function batch(n, size)
  local parts = {{}}
  for i = 1, size do parts[i] = event(n * size + i) end
  return table.concat(parts, ",")
end
function request()
  counter = counter + 1
  return wrk.format(nil, "{path}", nil, {body})
end
function done(summary, latency, requests)
  local errors = summary.errors
  local line = 'WRK {{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}}\\n'
  io.write(string.format(line,
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> WrkResult:
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK "))
    raw = json.loads(line[4:])
    return WrkResult(
        requests_per_second=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=raw["errors"],
    )


def load(url: str, script: Path, connections: int, seconds: float) -> WrkResult:
    run_wrk(url, script, connections, 1)  # connections opened, caches warm: not counted
    return run_wrk(url, script, connections, seconds)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def running(command: list[str], cwd: Path, log: Path, port: int) -> Iterator[float]:
    """The server, started; yields the seconds it took to answer /readyz with 200."""
    env = {**os.environ, "DRIFTMON_LOG_LEVEL": "warning", "PYTHONPATH": str(cwd)}
    began = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not wait_until_ready(f"http://127.0.0.1:{port}", server, timeout=180):
            raise RuntimeError(f"{command[:4]} did not become ready; see {log}")
        yield time.perf_counter() - began
    finally:
        stop(server)


def measure_baselines(scripts: Path, seconds: float) -> tuple[WrkResult, WrkResult]:
    port = free_port()
    command = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
    with running(command, HERE, scripts / "baseline.log", port):
        url = f"http://127.0.0.1:{port}"
        noop = load(url, scripts / "noop.lua", SINGLE_CONNECTIONS, seconds)
        parse = load(url, scripts / "parse.lua", BATCH_CONNECTIONS, seconds)
    return noop, parse


def timed_detection(client: httpx.Client) -> float:
    began = time.perf_counter()
    client.post(f"/v1/models/{MODEL}/runs").raise_for_status()
    return time.perf_counter() - began


def measure_driftmon(source: Path, scripts: Path, tag: str, seconds: float) -> ServerFigures:
    port = free_port()
    data_dir = scripts / f"data-{tag}"
    data_dir.mkdir()
    options = ("--schedule-seconds", "86400", "--window-max-events", "50000")
    command = serve_command(port, data_dir, *options)
    with running(command, source, scripts / f"driftmon-{tag}.log", port) as ready_seconds:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=300) as client:
            body = reference_frame(5000).to_csv(index=False).encode()
            client.put(f"/v1/models/{MODEL}/reference", content=body).raise_for_status()
            batch = load(url, scripts / f"batch-{tag}.lua", BATCH_CONNECTIONS, seconds)
            single = load(url, scripts / f"single-{tag}.lua", SINGLE_CONNECTIONS, seconds)
            first, second = timed_detection(client), timed_detection(client)
    return ServerFigures(single, batch, ready_seconds, first, second)


def write_scripts(folder: Path, tags: list[str]) -> None:
    events_path = f"/v1/models/{MODEL}/events"
    (folder / "noop.lua").write_text(lua_script("/noop", None, "noop"))
    (folder / "parse.lua").write_text(lua_script("/parse", BATCH_EVENTS, "parse"))
    for tag in tags:
        prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
        (folder / f"single-{tag}.lua").write_text(lua_script(events_path, None, prefix + "s"))
        (folder / f"batch-{tag}.lua").write_text(
            lua_script(events_path, BATCH_EVENTS, prefix + "b")
        )


def figures_of(tag: str, noop: WrkResult, parse: WrkResult, server: ServerFigures) -> list[Figure]:
    single, batch = server.single, server.batch
    batch_rate = batch.requests_per_second * BATCH_EVENTS
    parse_rate = parse.requests_per_second * BATCH_EVENTS
    first, second = server.first_detection_seconds, server.second_detection_seconds
    return [
        Figure.compare(
            f"{tag}: single-event POST, {SINGLE_CONNECTIONS} connections",
            single.requests_per_second, "req/s",
            baseline="no-op endpoint", baseline_value=noop.requests_per_second,
            target=at_least(SINGLE_RATE_TARGET),
            where_the_time_goes=SINGLE_TIME_GOES,
        ),
        Figure.compare(
            f"{tag}: single-event POST p99", single.p99_ms, "ms",
            baseline="no-op endpoint p99", baseline_value=noop.p99_ms,
            target=at_most(SINGLE_P99_TARGET),
        ),
        Figure.compare(
            f"{tag}: {BATCH_EVENTS}-event bodies, {BATCH_CONNECTIONS} connections",
            batch_rate, "events/s",
            baseline="orjson parse-only endpoint", baseline_value=parse_rate,
            target=at_least(BATCH_RATE_TARGET),
            where_the_time_goes="encoding the blocks and the append script in Redis",
        ),
        Figure.compare(f"{tag}: cold start, process start to ready", server.ready_seconds, "s",
                       where_the_time_goes="spawning the detection workers and their imports"),
        Figure.compare(
            f"{tag}: first detection after start", first, "s",
            baseline="second detection", baseline_value=second,
            target=at_most(COLD_START_TARGET),
        ),
    ]  # fmt: skip


def run(quick: bool = False, compare: Path | None = None) -> list[Figure]:
    """Every figure of this bench, measured in one run (about a minute; quick: half)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    seconds = 5.0 if quick else 10.0
    sources = {"driftmon": HERE} | ({"compared": compare.resolve()} if compare else {})
    with tempfile.TemporaryDirectory(prefix="http-intake-bench-") as tmp:
        scripts = Path(tmp)
        write_scripts(scripts, list(sources))
        noop, parse = measure_baselines(scripts, seconds)
        figures: list[Figure] = []
        for tag, source in sources.items():
            server = measure_driftmon(source, scripts, tag, seconds)
            if server.single.errors or server.batch.errors:
                raise RuntimeError(f"{tag}: requests failed under load; see {scripts}")
            figures += figures_of(tag, noop, parse, server)
    return figures


def describe(figure: Figure) -> str:
    text = f"{figure.value:>10.1f} {figure.unit:<9}"
    if figure.baseline_value:
        text += f" {figure.baseline} {figure.baseline_value:.1f}: {figure.ratio:.2f}x"
    if figure.met is not None:
        text += f" (target {figure.target}: {'met' if figure.met else 'MISSED'})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 s of load per figure, not 10")
    parser.add_argument("--compare", type=Path, default=None, help="another source tree")
    args = parser.parse_args()
    for figure in run(args.quick, args.compare):
        print(f"{figure.name:<52} {describe(figure)}")


if __name__ == "__main__":
    main()
