"""API keys and scopes, as FastAPI dependencies: every route declares the scope it needs
with `dependencies=[require(scope)]`, except the OPEN_PATHS.

Keys come from the environment (DRIFTMON_API_KEYS, DRIFTMON_API_KEYS_FILE) and are held
as SHA-256 digests only (service/config.py); a presented key is hashed and compared with
every configured digest in constant time. Without any key configured every route is
open: the service then binds to loopback only (Settings.binding_refusal)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, params
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.config import ApiKey, Scope, key_digest
from service.docs_offline import ASSETS as DOCS_ASSETS
from service.http_util import services_of

# routes that hold no data answer without a key: the probes, the API's description and
# its pages' scripts, styles and favicon
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    | set(DOCS_ASSETS)
)
METRICS_TOKEN_CALLER = "metrics-token"

BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="`Authorization: Bearer <API key>`"
)
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="apiKey", auto_error=False, description="the API key"
)


@dataclass(frozen=True)
class Caller:
    """Who a request was let in as: a configured key's name, or the metrics token."""

    name: str
    scopes: frozenset[str]


def matching_key(presented: str, keys: Sequence[ApiKey]) -> ApiKey | None:
    """The configured key whose digest is the presented key's, if any."""
    digest = key_digest(presented)
    found = None
    for key in keys:  # every key, no early exit: the time taken tells nothing of a match
        if hmac.compare_digest(digest, key.sha256):
            found = key
    return found


class Require:
    """The dependency behind `require(scope)`; `scope` is what tests and readers look at.
    With `metrics_token`, the DRIFTMON_METRICS_TOKEN is accepted too (and, when set, makes
    the route need a credential even without API keys)."""

    def __init__(self, scope: Scope, *, metrics_token: bool = False) -> None:
        self.scope = scope
        self.metrics_token = metrics_token

    async def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        header: Annotated[str | None, Depends(API_KEY_HEADER)],
    ) -> Caller | None:
        settings = services_of(request).settings
        token = settings.metrics_token if self.metrics_token else None
        if not settings.api_keys and token is None:
            return None  # anonymous mode: loopback only, or DRIFTMON_ALLOW_ANONYMOUS
        presented = bearer.credentials if bearer is not None else header
        if not presented:
            raise self._unauthorized("this route needs an API key")
        if token is not None and hmac.compare_digest(
            key_digest(presented), key_digest(token.get_secret_value())
        ):
            return Caller(METRICS_TOKEN_CALLER, frozenset({self.scope}))
        key = matching_key(presented, settings.api_keys)
        if key is None:
            raise self._unauthorized("the API key is not valid")
        if self.scope not in key.scopes:
            raise self._forbidden(key)
        return Caller(key.name, frozenset(key.scopes))

    def _unauthorized(self, error: str) -> HTTPException:
        hint = (
            f"send `Authorization: Bearer <key>` (or `X-API-Key: <key>`) with a key of "
            f"scope {self.scope!r}"
        )
        if self.metrics_token:
            hint += ", or the DRIFTMON_METRICS_TOKEN"
        detail = {"error": error, "hint": hint, "scope": self.scope}
        return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})

    def _forbidden(self, key: ApiKey) -> HTTPException:
        detail = {
            "error": f"API key {key.name!r} lacks scope {self.scope!r}",
            "hint": f"this route needs scope {self.scope!r}; {key.name!r} has "
            f"{', '.join(sorted(key.scopes))}: use another key or add the scope to this one",
            "scope": self.scope,
        }
        return HTTPException(403, detail=detail)


def require(scope: Scope) -> params.Security:
    """The route needs a key with `scope` (the OpenAPI schema shows it per operation)."""
    return params.Security(Require(scope), scopes=[scope])


def require_metrics() -> params.Security:
    """/metrics: a `read` key or the DRIFTMON_METRICS_TOKEN (what Prometheus sends)."""
    return params.Security(Require("read", metrics_token=True), scopes=["read"])


def declared_scope(dependencies: Sequence[params.Depends]) -> Scope | None:
    """The scope a route's dependencies require, if any (the route test reads it)."""
    for dependency in dependencies:
        if isinstance(dependency.dependency, Require):
            return dependency.dependency.scope
    return None
