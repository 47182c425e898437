"""While Redis is down, hung or refusing writes, every request is answered with a 503.

The client gives up within seconds (core/redis_client.py); what it raises reaches these
handlers from any route, and the caller gets a 503 with a Retry-After and the API's
error shape instead of a plain-text 500. Nothing was acknowledged, so a client that
retries loses nothing; what Redis stored anyway (a write that timed out may still be
carried out once a hung Redis resumes) is recognised by its event ids on the retry.
Redis errors that say nothing about its availability (a wrong type, a script error: a
bug) stay 500s, logged with their traceback."""

from __future__ import annotations

import logging
import re
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# replies that refuse a command for the server's state, not for the command: no
# class of redis-py's own; a pipeline's error names its command first, hence search
STATE_REPLY = re.compile(r"\b(MISCONF|BUSY|NOREPLICAS) ")
REFUSED_FOR_STATE: tuple[tuple[type[RedisError], str], ...] = (
    (BusyLoadingError, "Redis is loading its data"),
    (RedisConnectionError, "Redis cannot be reached"),
    (RedisTimeoutError, "Redis did not answer in time"),
    (OutOfMemoryError, "Redis is out of memory (maxmemory) and refuses writes"),
    (ReadOnlyError, "Redis is a read-only replica (a failover under way?)"),
    (ClusterDownError, "the Redis Cluster is down"),
    (TryAgainError, "the Redis Cluster is moving the model's slot"),
)


def unavailable_reason(error: BaseException) -> str | None:
    """Why Redis cannot serve now, if `error` says so; None for any other error."""
    for kind, reason in REFUSED_FOR_STATE:
        if isinstance(error, kind):
            return reason
    if isinstance(error, ResponseError):
        state = STATE_REPLY.search(str(error))
        if state is not None:
            return f"Redis refuses commands for now ({state.group(1)})"
    return None


def install_error_handlers(app: FastAPI, retry_after_seconds: int) -> None:
    """Redis errors that mean "unavailable" answer 503 with `Retry-After`."""
    handler = partial(answer_redis_error, retry_after_seconds)
    # ResponseError covers OOM, READONLY, MISCONF...: its other kinds are re-raised
    for kind in (RedisConnectionError, RedisTimeoutError, ResponseError):
        app.add_exception_handler(kind, handler)


async def answer_redis_error(
    retry_after_seconds: int, request: Request, error: Exception
) -> JSONResponse:
    reason = unavailable_reason(error)
    if reason is None:
        raise error  # a bug, not an outage: the server's 500, with its traceback logged
    # one line, no traceback: during an outage every request lands here
    log.warning("%s %s: 503, %s (%s)", request.method, request.url.path, reason, error)
    detail = {
        "error": f"{reason}; the request did not complete",
        "hint": f"retry after {retry_after_seconds} s; repeating it stores nothing twice: "
        "intake recognises events already stored by their id",
    }
    return JSONResponse(
        {"detail": detail},
        status_code=503,
        headers={"Retry-After": str(retry_after_seconds)},
    )
