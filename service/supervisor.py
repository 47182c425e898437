"""Keeps a background coroutine that should run until shutdown running.

A task whose coroutine escapes with an exception (a bug, a Redis reply nobody
expected) ends quietly while the process still looks healthy. The supervisor logs each
failure with its traceback, waits (doubling, capped), starts a fresh coroutine from the
factory and counts the restart; `up` tells readiness whether the work runs now."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    initial_seconds: float = 0.1
    max_seconds: float = 30.0

    def next(self, delay: float) -> float:
        return min(self.max_seconds, delay * 2)


class Supervisor:
    """Runs `work()` until `stop` is set, starting it again whenever it raises or
    returns early. Cancelling `run()` cancels the work and ends the supervision."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        on_restart: Callable[[], None],
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self._work = work
        self._stop = stop
        self._on_restart = on_restart
        self._backoff = backoff or Backoff()
        self.up = False
        self.last_error: str | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff.initial_seconds
        while not self._stop.is_set():
            started = loop.time()
            await self._run_once()
            if self._stop.is_set():
                return
            if loop.time() - started >= self._backoff.max_seconds:
                # it had been running fine: a fresh failure, not a failing loop, so the
                # wait starts short again
                delay = self._backoff.initial_seconds
            log.warning("%s is down; restarting in %.1fs", self.name, delay)
            await _sleep_or_stop(self._stop, delay)
            if self._stop.is_set():
                return
            delay = self._backoff.next(delay)
            self._on_restart()
            log.info("restarting %s", self.name)

    async def _run_once(self) -> None:
        self.up = True
        try:
            await self._work()
        except Exception as exc:  # whatever escaped: logged, and the work starts over
            log.exception("%s failed", self.name)
            self.last_error = f"{type(exc).__name__}: {exc}"
        else:
            if not self._stop.is_set():
                log.error("%s returned before shutdown", self.name)
                self.last_error = "returned before shutdown"
        finally:
            self.up = False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
