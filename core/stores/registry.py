"""Models and their reference versions, kept in Redis."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis

from core.clock import Clock
from core.dataset_audit import AuditSummary
from core.keys import Keys
from core.redis_types import optional_bytes, text
from core.schema import ModelSchema

# KEYS: the model index, the model's hash, its references hash, the reference's data.
# ARGV: model, most models (0: no cap), version, info JSON, uploaded_at, schema JSON,
# parquet, audit summary JSON ("": none). One script, so that the cap holds against
# concurrent uploads of new models, and the audit always describes the active reference.
# Returns 1 when the model is new, 0 when it existed, -1 when it would be one too many.
PUT_REFERENCE_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and tonumber(ARGV[2]) > 0
    and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return -1
end
redis.call('SET', KEYS[4], ARGV[7])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
local created = redis.call('HSETNX', KEYS[2], 'created_at', ARGV[5])
redis.call('HSET', KEYS[2], 'schema', ARGV[6], 'active', ARGV[3])
if ARGV[8] == '' then
  redis.call('HDEL', KEYS[2], 'audit')
else
  redis.call('HSET', KEYS[2], 'audit', ARGV[8])
end
redis.call('SADD', KEYS[1], ARGV[1])
return created
"""
SCAN_COUNT = 500  # keys per SCAN step and per UNLINK


class ModelLimitError(Exception):
    """Creating the model would exceed the cap on models."""

    def __init__(self, model: str, max_models: int) -> None:
        super().__init__(f"{max_models} models exist, the most allowed: {model!r} is not created")
        self.max_models = max_models


@dataclass
class ReferenceInfo:
    version: str
    rows: int
    columns: dict[str, str]
    uploaded_at: float
    ignored: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelRecord:
    name: str
    schema: ModelSchema
    active_version: str
    created_at: float
    references: list[ReferenceInfo]
    audit: AuditSummary | None = None  # the active reference's, when it was audited


def _audit(raw: bytes | None) -> AuditSummary | None:
    """A stored audit summary; one of a shape this version cannot read is left out
    rather than failing the model's description (the audit is advice, not state)."""
    if raw is None:
        return None
    try:
        return AuditSummary.model_validate_json(raw)
    except ValidationError:
        return None


class ModelRegistry:
    """Intake looks a model's schema up for every request and stream batch: schemas are
    kept here for `schema_cache_seconds`, so that the lookup does not queue behind a
    busy Redis. A reference uploaded through this process takes effect at once, one
    uploaded through another replica within that time."""

    def __init__(
        self, redis: Redis, keys: Keys, clock: Clock, schema_cache_seconds: float = 1.0
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._schema_cache_seconds = schema_cache_seconds
        self._schemas: dict[str, tuple[float, ModelSchema]] = {}  # model -> (until, schema)
        self._put_reference = redis.register_script(PUT_REFERENCE_SCRIPT)

    async def put_reference(
        self,
        model: str,
        schema: ModelSchema,
        info: ReferenceInfo,
        parquet: bytes,
        max_models: int | None = None,
        audit: AuditSummary | None = None,
    ) -> bool:
        """Store a reference version and make it active, with its audit summary. True
        when the model is new; ModelLimitError when it is new and `max_models` models
        exist."""
        keys = self._keys
        outcome = await self._put_reference(
            keys=[
                keys.models(),
                keys.model(model),
                keys.references(model),
                keys.reference_data(model, info.version),
            ],
            args=[
                model,
                max_models or 0,
                info.version,
                orjson.dumps(asdict(info)),
                info.uploaded_at,
                orjson.dumps(schema.to_dict()),
                parquet,
                "" if audit is None else audit.model_dump_json(),
            ],
        )
        if outcome == -1:
            raise ModelLimitError(model, max_models or 0)
        self._schemas.pop(model, None)
        return bool(outcome)

    async def delete(self, model: str) -> bool:
        """Remove the model from the index, then every key under its hash tag (SCAN, never
        KEYS: Redis keeps serving meanwhile). True when there was anything to remove."""
        indexed = await self._redis.srem(self._keys.models(), model)
        self._schemas.pop(model, None)
        removed = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(
            match=self._keys.model_pattern(model), count=SCAN_COUNT
        ):
            batch.append(key)
            if len(batch) == SCAN_COUNT:
                removed += await self._redis.unlink(*batch)
                batch = []
        if batch:
            removed += await self._redis.unlink(*batch)
        return bool(indexed or removed)

    async def names(self) -> list[str]:
        members = await self._redis.smembers(self._keys.models())
        return sorted(text(member) for member in members)

    async def get(self, model: str) -> ModelRecord | None:
        fields = await self._redis.hgetall(self._keys.model(model))
        if not fields:
            return None
        refs = await self._redis.hvals(self._keys.references(model))
        references = sorted(
            (ReferenceInfo(**orjson.loads(raw)) for raw in refs), key=lambda info: info.uploaded_at
        )
        return ModelRecord(
            name=model,
            schema=ModelSchema.from_dict(orjson.loads(fields[b"schema"])),
            active_version=text(fields[b"active"]),
            created_at=float(fields[b"created_at"]),
            references=references,
            audit=_audit(optional_bytes(fields.get(b"audit"))),
        )

    async def created_at(self, model: str) -> float | None:
        """When the model's first reference was uploaded; None for an unknown model."""
        raw = await self._redis.hget(self._keys.model(model), "created_at")
        return None if raw is None else float(raw)

    async def schema(self, model: str) -> ModelSchema | None:
        now = self._clock.now()
        cached = self._schemas.get(model)
        if cached is not None and now < cached[0]:
            return cached[1]
        raw = await self._redis.hget(self._keys.model(model), "schema")
        if raw is None:  # not cached: a model is usable as soon as its reference is in
            return None
        schema = ModelSchema.from_dict(orjson.loads(raw))
        self._schemas[model] = (now + self._schema_cache_seconds, schema)
        return schema

    async def reference_bytes(self, model: str, version: str) -> bytes | None:
        return optional_bytes(await self._redis.get(self._keys.reference_data(model, version)))
