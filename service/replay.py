"""`driftmon replay`'s computation: history cut into chunks, each chunk evaluated by the
service's own detection code as one window, and the model's alert rules advanced over
the runs, offline (no server, no Redis). Nothing here prints.

Per chunk: its rows become the event records intake takes, are validated and encoded
by intake's `validate` into stream blocks (replay_chunks.py), and go through
`evaluate_blocks`, the function the runner's worker calls, with the reference prepared
as the upload route prepares it (replay_input.py). The run's alerts are judged by the
alert sink's pure steps (replay_alerts.py) at the chunk's end time."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from alerts.lifecycle import iso_utc
from core.alerts import Transition
from core.results import RunResult, WindowInfo
from detectors.evaluate import evaluate_blocks
from service.replay_alerts import AlertChange, AlertReplay
from service.replay_chunks import Chunk, ChunkPlan, cut_chunks, encode_chunk
from service.replay_input import ModelSetup, PreparedInput


class ReplayChunk(BaseModel):
    """One chunk's replayed run: its period, its events, the RunResult the service would
    have stored, and the alert transitions it caused."""

    chunk: int
    period: str
    start: str | None = None
    end: str | None = None
    events: int
    rejected: int = 0
    run: RunResult
    alerts: list[AlertChange]
    # alerts firing once this chunk was judged
    firing: list[str]

    def transitions(self, kind: Transition) -> list[AlertChange]:
        return [change for change in self.alerts if change.transition == kind]

    @property
    def dataset_drift(self) -> bool:
        return self.run.status == "ok" and bool(self.run.dataset_drift)


@dataclass(frozen=True)
class Replay:
    """A prepared replay: the chunks to run, and what runs them."""

    model: ModelSetup
    prepared: PreparedInput
    plan: ChunkPlan
    chunks: list[Chunk]

    def __len__(self) -> int:
        return len(self.chunks)

    def runs(self) -> Iterator[ReplayChunk]:
        """The chunks' results, oldest first, one at a time (a progress bar follows)."""
        first = self.chunks[0].start if self.chunks[0].start is not None else 0.0
        alerts = AlertReplay(self.model, typical_interval(self.chunks), first)
        previous: RunResult | None = None
        for chunk in self.chunks:
            # as in a detection worker: OpenMP's thread per core fights a busy machine
            with threadpool_limits(limits=self.model.threads):
                result = self._run(chunk, previous)
            if result.run.status == "ok":
                previous = result.run
            changes = alerts.judge(result.run, chunk.run_at)
            yield result.model_copy(update={"alerts": changes, "firing": alerts.firing()})

    def _run(self, chunk: Chunk, previous_ok: RunResult | None) -> ReplayChunk:
        schema = self.prepared.reference.schema
        config = self.model.config
        encoded = encode_chunk(chunk, self.model.name, schema, self.plan, self.model.pii_key)
        blank = new_run(self, chunk)
        run = evaluate_blocks(
            blank, self.prepared.payload, encoded.blocks, {}, schema, config, encoded.rejects
        )
        if chunk.start is None:  # without times the window has no dates, only a size
            run.window = WindowInfo(events=run.window.events)
        run.dataset_drift_streak = drift_streak(run, previous_ok)
        return ReplayChunk(
            chunk=chunk.index,
            period=chunk.period,
            start=None if chunk.start is None else iso_utc(chunk.start),
            end=None if chunk.end is None else iso_utc(chunk.end),
            events=encoded.accepted,
            rejected=encoded.rejected,
            run=run,
            alerts=[],
            firing=[],
        )


def new_run(replay: Replay, chunk: Chunk) -> RunResult:
    """The run before evaluation, as the runner starts one, at the chunk's end."""
    config = replay.model.config
    return RunResult(
        run_id=f"replay-{chunk.index:04d}",
        model=replay.model.name,
        status="ok",
        trigger="schedule",
        started_at=iso_utc(chunk.run_at),
        reference_version=replay.prepared.reference.version,
        min_window_events=config.min_window_events,
        drift_share_threshold=config.drift_share,
    )


def drift_streak(run: RunResult, previous_ok: RunResult | None) -> int:
    """Consecutive ok runs with dataset drift, this one included (as the runner counts)."""
    if run.status != "ok" or not run.dataset_drift:
        return 0
    return 1 + (previous_ok.dataset_drift_streak if previous_ok is not None else 0)


def typical_interval(chunks: Sequence[Chunk]) -> float:
    """The replay's schedule interval, for the monitor-stale rule: the median time
    between chunk runs (none with a single chunk: nothing can be missed)."""
    gaps = [later.run_at - earlier.run_at for earlier, later in pairwise(chunks)]
    return statistics.median(gaps) if gaps else 0.0


def plan_replay(model: ModelSetup, prepared: PreparedInput, plan: ChunkPlan) -> Replay:
    """The chunks cut, the replay ready to run."""
    chunks = cut_chunks(prepared.history, plan, model.config.schedule_seconds)
    return Replay(model, prepared, plan, chunks)
