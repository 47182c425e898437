"""Models and their reference versions, kept in Redis."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson
from redis.asyncio import Redis

from core.clock import Clock
from core.keys import Keys
from core.redis_types import optional_bytes, text
from core.schema import ModelSchema


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

    async def put_reference(
        self, model: str, schema: ModelSchema, info: ReferenceInfo, parquet: bytes
    ) -> bool:
        """Store a reference version and make it active. True when the model is new."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.reference_data(model, info.version), parquet)
            pipe.hset(self._keys.references(model), info.version, orjson.dumps(asdict(info)))
            pipe.hsetnx(self._keys.model(model), "created_at", info.uploaded_at)
            pipe.hset(
                self._keys.model(model),
                mapping={"schema": orjson.dumps(schema.to_dict()), "active": info.version},
            )
            pipe.sadd(self._keys.models(), model)
            results = await pipe.execute()
        self._schemas.pop(model, None)
        return bool(results[2])

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
        )

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
