"""Bounds on what requests may hold of the process: the body bytes in flight across all
requests, the time a body may take to arrive, and the time and size of a request head.

The budget is one object per app, built by the lifespan (service/wiring.py) and held in
Services, where the middleware finds it. uvicorn bounds none of this: its keep-alive
timer runs only between requests and restarts on every byte received, nothing times a
request head, and httptools keeps every header byte it is sent; so a client sending a
byte every few seconds (slowloris) held its connection forever, and two dozen 16 MB
bodies parsed at once grew the process past its memory limit."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings

Waiter = tuple[int, "asyncio.Future[None]"]


class BodyBudget:
    """Body bytes held across all requests, at most `capacity`. Requests are admitted in
    arrival order, so that a big body is not starved by a stream of small ones, and wait
    at most `wait_seconds` for room. A body bigger than the whole budget is admitted
    alone (its route's own cap bounds it)."""

    def __init__(self, capacity: int, wait_seconds: float) -> None:
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self._waiting: deque[Waiter] = deque()

    async def acquire(self, size: int) -> int | None:
        """The bytes reserved (to release when done), or None: no room in time."""
        size = min(size, self.capacity)
        if not self._waiting and self.in_flight + size <= self.capacity:
            self.in_flight += size
            return size
        if self.wait_seconds <= 0:
            return None
        waiter: Waiter = (size, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            await asyncio.wait((waiter[1],), timeout=self.wait_seconds)
        except asyncio.CancelledError:
            self._leave(waiter)
            raise
        if waiter[1].done():
            return size
        self._leave(waiter)
        return None

    def release(self, size: int) -> None:
        self.in_flight -= size
        self._admit()

    def _leave(self, waiter: Waiter) -> None:
        size, granted = waiter
        if granted.done():  # admitted just as its wait ended: give the bytes back
            self.release(size)
            return
        granted.cancel()
        self._waiting.remove(waiter)
        self._admit()  # the head of the queue may have changed

    def _admit(self) -> None:
        while self._waiting and self.in_flight + self._waiting[0][0] <= self.capacity:
            size, granted = self._waiting.popleft()
            self.in_flight += size
            granted.set_result(None)


@dataclass(frozen=True)
class BodyLimits:
    budget: BodyBudget
    read_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        budget = BodyBudget(settings.max_body_bytes_in_flight, settings.body_wait_seconds)
        return cls(budget, settings.body_read_timeout_seconds)

    def over_budget(self) -> HTTPException:
        retry_after = max(1, math.ceil(self.budget.wait_seconds))
        detail = {
            "error": f"request bodies in flight are at their cap of {self.budget.capacity} bytes",
            "hint": f"retry after {retry_after} s",
            "setting": "DRIFTMON_MAX_BODY_BYTES_IN_FLIGHT",
        }
        return HTTPException(503, detail=detail, headers={"Retry-After": str(retry_after)})

    def too_slow(self) -> HTTPException:
        detail = {
            "error": f"the body did not arrive within {self.read_timeout_seconds:g} s",
            "hint": "send the body as soon as its headers",
            "setting": "DRIFTMON_BODY_READ_TIMEOUT_SECONDS",
        }
        # the rest of the body is not waited for: the connection goes with the answer
        return HTTPException(408, detail=detail, headers={"Connection": "close"})


def declared_length(scope: Scope) -> int | None:
    """The body's length from its headers: 0 without a body, None when chunked."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is not None and length.isdigit():
        return int(length)
    return None if b"transfer-encoding" in headers else 0


class BodyReading:
    """One request's `receive`: at the first read of its body (after the route's own
    checks, so 401, 404 and 413 come first), reserves the body's bytes in the budget, or
    raises the 503; then raises the 408 when the whole body has not arrived in time. A
    chunked body reserves its chunks as they come."""

    def __init__(self, limits: BodyLimits, receive: Receive, declared: int | None) -> None:
        self._limits = limits
        self._receive = receive
        self._declared = declared
        self._held = 0
        self._deadline: float | None = None
        self._complete = declared == 0

    async def receive(self) -> Message:
        if self._complete:
            return await self._receive()
        if self._deadline is None:
            await self._reserve(self._declared or 0)
            self._deadline = asyncio.get_running_loop().time() + self._limits.read_timeout_seconds
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            raise self._limits.too_slow() from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._complete = True
        if self._declared is None:
            await self._reserve(len(message.get("body", b"")))
        return message

    async def _reserve(self, size: int) -> None:
        if size == 0:
            return
        reserved = await self._limits.budget.acquire(size)
        if reserved is None:
            raise self._limits.over_budget()
        self._held += reserved

    def release(self) -> None:
        if self._held:
            self._limits.budget.release(self._held)
            self._held = 0


class BoundedBodies:
    """ASGI middleware: each request's body is read through a BodyReading, and its bytes
    stay reserved until the answer is sent (the parsed records take memory until then)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] != "http" or services is None:
            await self.app(scope, receive, send)
            return
        reading = BodyReading(services.body_limits, receive, declared_length(scope))
        try:
            await self.app(scope, reading.receive, send)
        finally:
            reading.release()


def connection_bounds(settings: Settings) -> dict[str, Any]:
    """uvicorn.run's options bounding a connection's request head, in time and size."""
    max_bytes = settings.max_head_bytes
    return {
        "http": head_deadline_protocol(settings.header_read_timeout_seconds, max_bytes),
        "h11_max_incomplete_event_size": max_bytes,
    }


def head_deadline_protocol(seconds: float, max_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11: what "auto" picks)
    closing a connection whose request head has not arrived `seconds` after the
    connection opened or after its last answer, trickled bytes or not, and refusing a
    head over `max_bytes` (h11 bounds it itself with h11_max_incomplete_event_size)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class HeadDeadlineProtocol(base):  # type: ignore[misc]
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def on_message_begin(self) -> None:  # httptools only, as the two below
            self._head_bytes = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count_head(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_head(len(name) + len(value))
            super().on_header(name, value)

        def _count_head(self, size: int) -> None:
            self._head_bytes += size
            if self._head_bytes > max_bytes:  # uvicorn answers a parser callback's error 400
                raise ValueError(f"request head over {max_bytes} bytes (DRIFTMON_MAX_HEAD_BYTES)")

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(seconds, self._head_overdue)

        def _head_overdue(self) -> None:
            self._head_timer = None
            cycle = self.cycle  # the last request: while it runs, its body has its own bound
            if cycle is None or cycle.response_complete:
                self.transport.close()

    return HeadDeadlineProtocol
