"""The commands' HTTP side: a sync httpx client on a running driftmon (its URL, the API
key from DRIFTMON_API_KEY), answers checked into one-line errors, and retries of 503/429
that honour Retry-After."""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import httpx
import orjson

from service.cli_common import CommandError

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "DRIFTMON_URL"
API_KEY_ENV = "DRIFTMON_API_KEY"
# the header service/auth.py reads besides `Authorization: Bearer`
API_KEY_HEADER = "X-API-Key"
RETRIED_STATUSES = frozenset({429, 503})
# a Retry-After beyond this is the server asking for more patience than a CLI run has
MAX_RETRY_AFTER_SECONDS = 300.0


def error_detail(response: httpx.Response) -> str:
    """The server's reason: FastAPI's `detail` (an error with its field or hint, or
    validation errors), else the body's start."""
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:300] or response.reason_phrase
    if isinstance(detail, Mapping):
        parts = [str(detail.get("error", ""))]
        parts += [f"{key}: {detail[key]}" for key in ("field", "hint", "setting") if key in detail]
        return "; ".join(part for part in parts if part)
    if isinstance(detail, list):  # request validation: [{"loc": [...], "msg": ...}]
        return "; ".join(
            f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg', '')}" for item in detail
        )
    return str(detail)


def server_error(response: httpx.Response) -> CommandError:
    request = response.request
    return CommandError(
        f"{request.method} {request.url.path} answered {response.status_code}: "
        f"{error_detail(response)}"
    )


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait (delta seconds or an HTTP date), None when absent
    or unreadable."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of 503/429: Retry-After when the server gives one (capped),
    else exponential backoff with full jitter, so many clients do not retry in step."""

    max_retries: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int, response: httpx.Response) -> float:
        given = retry_after_seconds(response)
        if given is not None:
            return min(given, MAX_RETRY_AFTER_SECONDS)
        return self.jitter() * min(self.cap_seconds, self.base_seconds * 2.0**attempt)


@dataclass(frozen=True)
class Body:
    """What a request carries besides its method and path."""

    content: bytes | Iterable[bytes] | None = None
    content_type: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.content_type is None else {"content-type": self.content_type}


@dataclass(frozen=True)
class ServerAddress:
    url: str
    timeout_seconds: float
    api_key: str | None = None

    @classmethod
    def of(cls, url: str, timeout_seconds: float) -> ServerAddress:
        """The API key comes from the environment only: a flag would show it in `ps`."""
        return cls(url.rstrip("/"), timeout_seconds, os.environ.get(API_KEY_ENV) or None)


class ApiClient:
    """httpx.Client on one server; transport failures become one-line CommandErrors."""

    def __init__(self, address: ServerAddress, transport: httpx.BaseTransport | None = None):
        headers = {API_KEY_HEADER: address.api_key} if address.api_key else {}
        self.address = address
        self._client = httpx.Client(
            base_url=address.url,
            headers=headers,
            timeout=address.timeout_seconds,
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._client.close()

    def request(self, method: str, path: str, body: Body | None = None) -> httpx.Response:
        body = body or Body()
        try:
            return self._client.request(
                method, path, params=body.params, content=body.content, headers=body.headers
            )
        except httpx.ConnectError as exc:
            raise CommandError(
                f"cannot connect to {self.address.url} ({exc}); is `driftmon serve` "
                f"running there? Set --url or {URL_ENV}"
            ) from exc
        except httpx.TimeoutException as exc:
            raise CommandError(
                f"{method} {path} got no answer within {self.address.timeout_seconds:g} "
                "s (--timeout)"
            ) from exc
        except httpx.TransportError as exc:
            raise CommandError(f"{method} {path} failed: {exc}") from exc

    def json(self, method: str, path: str, expected: int, body: Body | None = None) -> object:
        """The JSON body of the expected answer; any other raises the server's reason."""
        response = self.request(method, path, body)
        if response.status_code != expected:
            raise server_error(response)
        return orjson.loads(response.content)

    def with_retries(
        self, policy: RetryPolicy, method: str, path: str, body: Body
    ) -> httpx.Response:
        """The first answer that is not 503/429, or the last one once retries run out."""
        attempt = 0
        while True:
            response = self.request(method, path, body)
            if response.status_code not in RETRIED_STATUSES or attempt >= policy.max_retries:
                return response
            policy.sleep(policy.delay(attempt, response))
            attempt += 1
