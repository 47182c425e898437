"""The access settings of `Settings` (README "Access"): API keys and their scopes, the
/metrics token, anonymous mode. service/auth.py checks them. Kept beside
service/config.py so that each stays readable."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings

Scope = Literal["ingest", "read", "admin", "label"]
MIN_SECRET_LENGTH = 16


def key_digest(key: str) -> str:
    """SHA-256 hex of a key: all that is kept of a configured key, and what a presented
    key is compared as."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    """One API key: `{"name", "key" | "sha256", "scopes"}`. A plaintext `key` is hashed
    as it is read and dropped; `sha256` lets a deployment keep no plaintext at all."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    scopes: frozenset[Scope] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _hash_plaintext(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("key" not in data and "sha256" not in data):
            raise ValueError('each API key needs "key" or "sha256"')
        if "key" not in data:
            return {**data, "sha256": str(data["sha256"]).lower()}
        if "sha256" in data:
            raise ValueError('give "key" or "sha256", not both')
        key = data["key"]
        if not isinstance(key, str) or len(key) < MIN_SECRET_LENGTH:
            raise ValueError(f'"key" must be a string of {MIN_SECRET_LENGTH} characters or more')
        rest = {name: value for name, value in data.items() if name != "key"}
        return {**rest, "sha256": key_digest(key)}


API_KEY_LIST = TypeAdapter(list[ApiKey])


def read_api_keys_file(path: Path) -> list[ApiKey]:
    """The keys of a mounted Secret file (the JSON of DRIFTMON_API_KEYS). Errors name the
    file and the entry, never the file's content."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"DRIFTMON_API_KEYS_FILE {path}: {exc.strerror}") from None
    try:
        return API_KEY_LIST.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'file'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"DRIFTMON_API_KEYS_FILE {path}: {problems}") from None


def is_loopback(host: str) -> bool:
    """True for loopback addresses and `localhost`; a host name may resolve to anything."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AccessSettings(BaseSettings):
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list of {"name", "key" | "sha256", "scopes"}; keys are hashed at '
        "start and only their hashes kept. None: every route is open (anonymous mode)",
    )
    api_keys_file: Path | None = Field(
        default=None, description="a file of more keys in the same JSON (a mounted Secret)"
    )
    allow_anonymous: bool = Field(
        default=False, description="serve without API keys on a host other than loopback"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics accepts besides read keys; set, /metrics needs one",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _usable_token(cls, value: Any) -> Any:
        token = value.get_secret_value() if isinstance(value, SecretStr) else value
        if token == "":  # `DRIFTMON_METRICS_TOKEN=` reads as unset
            return None
        if isinstance(token, str) and len(token) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be {MIN_SECRET_LENGTH} characters or more")
        return value

    @model_validator(mode="after")
    def _merge_api_keys_file(self) -> Self:
        from_file = [] if self.api_keys_file is None else read_api_keys_file(self.api_keys_file)
        # the same entry twice is harmless (settings rebuilt from a dump); a name or a key
        # given twice with different scopes is ambiguous
        keys = list(dict.fromkeys([*self.api_keys, *from_file]))
        for what, values in (("name", [k.name for k in keys]), ("key", [k.sha256 for k in keys])):
            if len(set(values)) != len(values):
                raise ValueError(f"API keys: the same {what} is configured twice")
        self.api_keys = keys
        return self
