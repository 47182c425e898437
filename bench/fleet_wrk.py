"""Intake load for the fleet bench: `wrk` posting single events with unique ids, round
robin over the fleet's models, in short chunks.

Chunks let the bench keep only the load that fell inside a detection round (whose end
it learns afterwards). Debian's wrk 4.1 does not hand its latency histogram to Lua in a
usable form, so chunks cannot be merged exactly: the figure is the worst chunk's p99,
for the round and for idle alike."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import CATEGORICAL, NUMERICAL

CONNECTIONS = 16
VARIANTS = 64  # distinct feature objects the script cycles through


@dataclass(frozen=True)
class Chunk:
    """One wrk run: its wall-clock bounds, requests, p99 and errors."""

    began: float
    ended: float
    requests: int
    p99_ms: float
    errors: int


@dataclass
class Latencies:
    """Chunks taken together: the worst chunk's p99, requests and errors of all."""

    chunks: list[Chunk] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(chunk.requests for chunk in self.chunks)

    @property
    def errors(self) -> int:
        return sum(chunk.errors for chunk in self.chunks)

    def worst_p99_ms(self) -> float:
        return max((chunk.p99_ms for chunk in self.chunks), default=0.0)


def feature_json(variant: int) -> str:
    numbers = {
        name: round(((variant * 7 + i * 13) % 97) / 24.0 - 2.0, 4)
        for i, name in enumerate(NUMERICAL)
    }
    labels = ("alpha", "beta", "gamma", "delta")
    texts = {name: labels[(variant + i) % 4] for i, name in enumerate(CATEGORICAL)}
    return json.dumps({**numbers, **texts}, separators=(",", ":"))


def lua_script(models: list[str], prefix: str) -> str:
    """POSTs one event per request to the next model, with an id never used before (the
    prefix is per chunk), and prints the histogram's non-empty buckets at the end."""
    variants = ",".join(json.dumps(feature_json(v)) for v in range(VARIANTS))
    paths = ",".join(json.dumps(f"/v1/models/{model}/events") for model in models)
    return f"""
local counter = 0
local variants = {{{variants}}}
local paths = {{{paths}}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  counter = counter + 1
  local body = '{{"event_id":"{prefix}-' .. counter .. '","features":'
    .. variants[counter % #variants + 1] .. '}}'
  return wrk.format(nil, paths[counter % #paths + 1], nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CHUNK %d %d %d\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(99)))
end
"""


def run_chunk(url: str, folder: Path, models: list[str], seconds: float, serial: int) -> Chunk:
    script = folder / f"chunk-{serial}.lua"
    script.write_text(lua_script(models, f"wrk{time.time_ns()}"))
    command = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(script), url,
    ]  # fmt: skip
    began = time.time()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    ended = time.time()
    line = next(line for line in output.splitlines() if line.startswith("CHUNK "))
    requests, errors, p99_us = (int(part) for part in line.split()[1:])
    return Chunk(began, ended, requests, p99_us / 1000, errors)


class ChunkedLoad:
    """wrk chunks back to back in a thread, from `start()` until `stop()`."""

    def __init__(self, url: str, folder: Path, models: list[str], chunk_seconds: float) -> None:
        self._url, self._folder, self._models = url, folder, models
        self._seconds = chunk_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wrk-chunks", daemon=True)
        self.chunks: list[Chunk] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[Chunk]:
        self._stopping.set()
        self._thread.join()
        return self.chunks

    def _loop(self) -> None:
        serial = 0
        while not self._stopping.is_set():
            serial += 1
            chunk = run_chunk(self._url, self._folder, self._models, self._seconds, serial)
            self.chunks.append(chunk)


def merged(chunks: list[Chunk], since: float = 0.0, until: float = float("inf")) -> Latencies:
    """The chunks that lie wholly within [since, until], merged."""
    return Latencies([chunk for chunk in chunks if chunk.began >= since and chunk.ended <= until])
