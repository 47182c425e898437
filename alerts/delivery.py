"""One HTTP attempt of one notification, under a policy, with its outcome classified.

Expected failures (a receiver down, slow, or refusing) are results, not exceptions: the
dispatcher decides from `DeliveryResult.outcome` whether to complete, retry or
dead-letter. Error texts never carry the request's URL beyond scheme and host, since a
Slack webhook's path (or a webhook's query) is a secret."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Literal

import httpx

from core.clock import Clock

DeliveryOutcome = Literal["delivered", "retry", "permanent"]

# enough of an error body to tell why (Slack answers e.g. "invalid_payload"); more is
# dropped, and a body larger than the drain limit closes the connection unread
ERROR_SNIPPET_BYTES = 200
DRAIN_LIMIT_BYTES = 64 * 1024
# 408 and 425 say "try again" as plainly as a 5xx does
RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class HttpRequest:
    """What a channel formats: everything needed to send, nothing about how."""

    method: str
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float
    # exact host names; None allows every host
    allowed_hosts: frozenset[str] | None = None
    # a receiver asking for a day's pause gets this much at most
    max_retry_after_seconds: float = 3600.0


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    status: int | None = None
    error: str = ""
    # the receiver's Retry-After in seconds (capped), when it gave one
    retry_after: float | None = None
    # False when the policy refused the request before anything went out
    sent: bool = True


def redact_url(url: str) -> str:
    """Scheme, host and port only: what logs and errors may show of a channel's URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class HttpDelivery:
    """Sends one request: http(s) only, allowed hosts only, redirects never followed
    (a 3xx is a permanent failure: following it could leak a signed body elsewhere), and
    a total deadline per request, so a slow receiver costs at most `timeout_seconds`."""

    def __init__(self, client: httpx.AsyncClient, policy: DeliveryPolicy, clock: Clock) -> None:
        self._client = client
        self._policy = policy
        self._clock = clock

    async def send(self, request: HttpRequest) -> DeliveryResult:
        refusal = self._refusal(request.url)
        if refusal is not None:
            return DeliveryResult("permanent", error=refusal, sent=False)
        timeout = self._policy.timeout_seconds
        try:
            # httpx's timeout bounds each phase; asyncio's bounds the whole exchange,
            # so a receiver dripping bytes cannot hold a delivery slot forever
            async with asyncio.timeout(timeout):
                return await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException):
            return DeliveryResult("retry", error=f"timed out after {timeout:g}s")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return DeliveryResult("permanent", error=_scrub(exc, request.url))
        except httpx.TransportError as exc:
            return DeliveryResult("retry", error=_scrub(exc, request.url))

    def _refusal(self, url: str) -> str | None:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return "refused: invalid URL"
        if parsed.scheme not in ("http", "https"):
            return f"refused: scheme {parsed.scheme!r} is not http(s)"
        allowed = self._policy.allowed_hosts
        if allowed is not None and parsed.host.lower() not in allowed:
            return f"refused: host {parsed.host!r} is not in the allowed hosts"
        return None

    async def _exchange(self, request: HttpRequest) -> DeliveryResult:
        outgoing = self._client.build_request(
            request.method,
            request.url,
            headers=dict(request.headers),
            content=request.body,
            timeout=self._policy.timeout_seconds,
        )
        response = await self._client.send(outgoing, stream=True, follow_redirects=False)
        try:
            body = await _drain(response)
        finally:
            await response.aclose()
        return self._classify(response, body, request.url)

    def _classify(self, response: httpx.Response, body: bytes, url: str) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult("delivered", status=status)
        snippet = body[:ERROR_SNIPPET_BYTES].decode("utf-8", "replace").strip()
        error = _scrub_text(f"HTTP {status}" + (f": {snippet}" if snippet else ""), url)
        if 300 <= status < 400:
            # the Location may hold a secret of the receiver's; name only where it points
            location = response.headers.get("location", "")
            target = redact_url(str(response.url.join(location))) if location else "nowhere"
            return DeliveryResult(
                "permanent", status=status, error=f"{error} (redirect to {target} not followed)"
            )
        if status in RETRY_STATUSES or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            if wait is not None:
                wait = min(wait, self._policy.max_retry_after_seconds)
            return DeliveryResult("retry", status=status, error=error, retry_after=wait)
        return DeliveryResult("permanent", status=status, error=error)


async def _drain(response: httpx.Response) -> bytes:
    """Reads a small body whole (so the connection can be reused), a large one not."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > DRAIN_LIMIT_BYTES:
            break
    return b"".join(chunks)


def _scrub(exc: Exception, url: str) -> str:
    name = type(exc).__name__
    return _scrub_text(f"{name}: {exc}" if str(exc) else name, url)


def _scrub_text(text: str, url: str) -> str:
    """Replaces the URL's secret part (path and query) wherever the text repeats it."""
    text = text.replace(url, redact_url(url))
    try:
        secret = httpx.URL(url).raw_path.decode("ascii", "replace")
    except httpx.InvalidURL:
        return text
    if len(secret) > 1:
        text = text.replace(secret, "/<redacted>")
    return text
