"""Request and response halves of inference-logger CloudEvents, waiting in Redis for
their partner within a TTL. An expiry index lets a sweeper count the halves that never
found one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from redis.asyncio import Redis

from core.keys import Keys
from core.redis_types import optional_bytes, text

# KEYS: the pending hash of one (source, id), the expiry index. ARGV: half, payload,
# ttl_ms, now_ms, index member. Returns the other half's payload once both are in.
JOIN_SCRIPT = """
local other = (ARGV[1] == 'request') and 'response' or 'request'
local found = redis.call('HGET', KEYS[1], other)
if found then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
  return found
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[5])
return false
"""

# KEYS: the expiry index. ARGV: now_ms. Removes and returns what expired, once.
SWEEP_SCRIPT = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
return gone
"""


@dataclass(frozen=True)
class HalfKey:
    source: str
    correlation_id: str
    half: str  # "request" or "response"


class HalfJoins:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._keys = keys
        self._join = redis.register_script(JOIN_SCRIPT)
        self._sweep = redis.register_script(SWEEP_SCRIPT)

    async def offer(
        self, model: str, key: HalfKey, payload: bytes, ttl_seconds: float, now: float
    ) -> bytes | None:
        """Leave this half, or take its partner (the partner's payload) when it is in."""
        pending = self._keys.ce_pending(key.source, key.correlation_id)
        other = await self._join(
            keys=[pending, self._keys.ce_expiries()],
            args=[
                key.half,
                payload,
                int(ttl_seconds * 1000),
                int(now * 1000),
                f"{model}|{pending}",
            ],
        )
        return optional_bytes(other) if other else None

    async def sweep(self, now: float) -> dict[str, int]:
        """Halves whose partner never came within the TTL, by model; each counted once."""
        gone = await self._sweep(keys=[self._keys.ce_expiries()], args=[int(now * 1000)])
        return dict(Counter(text(member).split("|", 1)[0] for member in gone))
