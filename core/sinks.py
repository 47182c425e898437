"""The run-sink seam: every consumer of finished runs (metrics, alerts, labeling) is a
RunSink that the detection runner calls once per stored run, on the replica that ran it,
with the samples the run flagged for labeling (none unless the model's labeling is on)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from core.labeling import FlaggedSample
from core.results import RunResult

log = logging.getLogger(__name__)


class RunSink(Protocol):
    # names the sink in logs and in driftmon_run_sink_failures_total{sink}
    name: str

    async def publish(
        self,
        run: RunResult,
        previous: RunResult | None,
        flagged: Sequence[FlaggedSample] = (),
    ) -> None:
        """Called after `run` is stored; `previous` is the model's run before it;
        `flagged`, the window samples the run flagged for labeling, highest priority
        first (empty for a run that is not ok or a model without labeling)."""
        ...


class SinkFailureCounter(Protocol):
    def count_sink_failure(self, sink: str) -> None: ...


async def publish_run(
    sinks: Sequence[RunSink],
    run: RunResult,
    previous: RunResult | None,
    failures: SinkFailureCounter,
    flagged: Sequence[FlaggedSample] = (),
) -> None:
    """Hands the run, and the samples it flagged, to every sink at once. A sink that
    raises is logged and counted; the run and the other sinks go on as if it had
    succeeded."""

    async def one(sink: RunSink) -> None:
        try:
            await sink.publish(run, previous, flagged)
        except Exception:
            log.exception("run sink %s failed on run %s of %s", sink.name, run.run_id, run.model)
            failures.count_sink_failure(sink.name)

    await asyncio.gather(*(one(sink) for sink in sinks))
