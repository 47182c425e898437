"""Small helpers shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from core.config import MODEL_NAME_PATTERN
from service.state import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def check_model_name(model: str) -> None:
    if not MODEL_NAME_PATTERN.match(model):
        raise HTTPException(
            422, detail={"field": "model", "error": f"must match {MODEL_NAME_PATTERN.pattern}"}
        )


def unknown_model(model: str) -> HTTPException:
    return HTTPException(
        404,
        detail={
            "error": f"model {model!r} is unknown",
            "hint": f"upload its training reference first: PUT /v1/models/{model}/reference",
        },
    )


async def read_capped_body(request: Request, cap: int, setting: str) -> bytes:
    """The body, or 413 naming the cap, without buffering more than the cap."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large(int(declared), cap, setting)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large(size, cap, setting)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, cap: int, setting: str) -> HTTPException:
    detail: dict[str, Any] = {
        "error": f"body of {size} bytes is over the cap of {cap} bytes",
        "cap_bytes": cap,
        "setting": setting,
    }
    return HTTPException(413, detail=detail)
