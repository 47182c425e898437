"""The durable notification outbox: what the alert engine decided to send, kept in Redis
until a dispatcher delivers it or gives up on it.

Notifications sharing an order key go out one at a time, in enqueue order: only the
oldest pending one of a key (its head) is ever due. The queue sorted set holds every
pending notification as "order key NUL sequence NUL id" with score 0, so a lexical
range finds a key's next one; the due sorted set holds the heads alone, scored by
their next attempt. A claim moves a head's score a lease ahead instead of removing
it: a dispatcher that dies mid-send leaves it to be claimed again once the lease is
over, and nothing accepted is lost between any two calls. Every step is one script,
on keys of one hash tag (a Redis Cluster keeps them in one slot)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from core.alerts import Notification
from core.keys import Keys
from core.redis_types import text

# every script gets the same KEYS, in this order:
# 1 items, 2 attempts, 3 errors, 4 members, 5 queue, 6 due, 7 sequence, 8 created, 9 dead

# ARGV: now, then per notification: id, order key, created_at, JSON, attempts. An id
# already pending is left as it is. Returns how many were added.
ENQUEUE_SCRIPT = r"""
local added = 0
for i = 2, #ARGV, 5 do
  local id, order = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 3]) == 1 then
    local seq = redis.call('INCR', KEYS[7])
    local member = order .. '\0' .. string.format('%020d', seq) .. '\0' .. id
    redis.call('HSET', KEYS[2], id, ARGV[i + 4])
    redis.call('HSET', KEYS[4], id, member)
    redis.call('ZADD', KEYS[8], ARGV[i + 2], id)
    redis.call('ZADD', KEYS[5], 0, member)
    local head = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. order .. '\0', '(' .. order .. '\1',
      'LIMIT', 0, 1)
    if head[1] == member then redis.call('ZADD', KEYS[6], ARGV[1], id) end
    added = added + 1
  end
end
return added
"""

# ARGV: now, limit, lease end. Returns {JSON, attempts, last error or nil} per claimed one.
CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local claimed = {}
for _, id in ipairs(ids) do
  local item = redis.call('HGET', KEYS[1], id)
  if item then
    redis.call('ZADD', KEYS[6], ARGV[3], id)
    claimed[#claimed + 1] = {item, redis.call('HGET', KEYS[2], id), redis.call('HGET', KEYS[3], id)}
  else
    redis.call('ZREM', KEYS[6], id)
  end
end
return claimed
"""

# ARGV: id, next attempt, error. Only a head is rescheduled (ZADD XX): a notification
# waiting behind its key's head must not become due. Returns 1 when it was pending.
RETRY_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[6], 'XX', ARGV[2], ARGV[1])
return 1
"""

# ARGV: id, now, "done" or "dead", reason, dead-letter cap. Removes the notification
# (keeping it in the dead letters when "dead") and makes the next of its order key due
# now. Returns 1 when it was pending.
FINISH_SCRIPT = r"""
local id = ARGV[1]
local member = redis.call('HGET', KEYS[4], id)
if not member then return 0 end
if ARGV[3] == 'dead' then
  local entry = cjson.encode({notification = redis.call('HGET', KEYS[1], id),
    attempts = tonumber(redis.call('HGET', KEYS[2], id)) or 0,
    last_error = redis.call('HGET', KEYS[3], id), reason = ARGV[4], dead_at = ARGV[2]})
  redis.call('LPUSH', KEYS[9], entry)
  redis.call('LTRIM', KEYS[9], 0, tonumber(ARGV[5]) - 1)
end
redis.call('ZREM', KEYS[5], member)
redis.call('ZREM', KEYS[6], id)
redis.call('ZREM', KEYS[8], id)
for k = 1, 4 do redis.call('HDEL', KEYS[k], id) end
local cut = string.find(member, '\0', 1, true)
local order = string.sub(member, 1, cut - 1)
local following = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. order .. '\0', '(' .. order .. '\1',
  'LIMIT', 0, 1)
-- the id follows the order key, NUL, 20 digits of sequence and NUL
if following[1] then
  redis.call('ZADD', KEYS[6], 'NX', ARGV[2], string.sub(following[1], cut + 22))
end
return 1
"""


class NotificationQueue(Protocol):
    """What a dispatcher needs of the outbox."""

    async def claim(self, now: float, limit: int, lease_seconds: float) -> list[Notification]: ...

    async def complete(self, notification_id: str) -> bool: ...

    async def retry(self, notification_id: str, next_attempt_at: float, error: str) -> bool: ...

    async def dead_letter(self, notification_id: str, reason: str, now: float) -> bool: ...

    async def depth(self) -> int: ...

    async def oldest_created_at(self) -> float | None: ...


@dataclass(frozen=True)
class DeadLetter:
    notification: Notification  # with its attempts and last error
    reason: str
    dead_at: float  # unix seconds


class Outbox:
    def __init__(self, redis: Redis, keys: Keys, dead_letter_cap: int = 1000) -> None:
        self._redis = redis
        self._keys = keys
        self._dead_letter_cap = dead_letter_cap
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._retry = redis.register_script(RETRY_SCRIPT)
        self._finish = redis.register_script(FINISH_SCRIPT)

    def _all_keys(self) -> list[str]:
        keys = self._keys
        return [
            keys.outbox_items(),
            keys.outbox_attempts(),
            keys.outbox_errors(),
            keys.outbox_members(),
            keys.outbox_queue(),
            keys.outbox_due(),
            keys.outbox_sequence(),
            keys.outbox_created(),
            keys.outbox_dead(),
        ]

    def enqueue_commands(
        self, pipe: Pipeline, notifications: Sequence[Notification], now: float
    ) -> None:
        """Queue the enqueue on a caller's transaction, so that what it writes besides
        (an alert's state) and the notifications commit together. An id already
        pending is stored once. EVAL, not a registered script: a registered one would
        have to be awaited, and it would load itself outside the caller's MULTI."""
        if not notifications:
            return
        args: list[Any] = [now]
        for notification in notifications:
            if "\0" in notification.order_key:  # NUL separates the queue's fields
                raise ValueError(f"order key {notification.order_key!r} holds a NUL")
            args += [
                notification.id,
                notification.order_key,
                notification.created_at,
                notification.model_dump_json(),
                notification.attempts,
            ]
        keys = self._all_keys()
        pipe.eval(ENQUEUE_SCRIPT, len(keys), *keys, *args)

    async def enqueue(self, notifications: Sequence[Notification], now: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            self.enqueue_commands(pipe, notifications, now)
            await pipe.execute()

    async def claim(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        """Up to `limit` due heads, each leased for `lease_seconds`: no other claim gets
        it meanwhile, and it is due again when the lease ends without an outcome."""
        if limit <= 0:
            return []
        claimed = await self._claim(keys=self._all_keys(), args=[now, limit, now + lease_seconds])
        return [_stored(item, attempts, error) for item, attempts, error in claimed]

    async def complete(self, notification_id: str) -> bool:
        """Delivered: it goes, and the next of its order key is due at once. False when
        it was not pending (completed or dead-lettered already)."""
        return await self._end(notification_id, "done", "", now=0.0)

    async def retry(self, notification_id: str, next_attempt_at: float, error: str) -> bool:
        outcome = await self._retry(
            keys=self._all_keys(), args=[notification_id, next_attempt_at, error]
        )
        return bool(outcome)

    async def dead_letter(self, notification_id: str, reason: str, now: float) -> bool:
        """Given up: kept among the newest dead letters, and the next of its order key
        is due at once."""
        return await self._end(notification_id, "dead", reason, now)

    async def _end(self, notification_id: str, how: str, reason: str, now: float) -> bool:
        # complete has no clock: it promotes with score 0.0, a past time, due at once
        outcome = await self._finish(
            keys=self._all_keys(),
            args=[notification_id, now, how, reason, self._dead_letter_cap],
        )
        return bool(outcome)

    async def depth(self) -> int:
        """Pending notifications: due, leased and waiting behind their key's head."""
        return int(await self._redis.zcard(self._keys.outbox_created()))

    async def oldest_created_at(self) -> float | None:
        oldest = await self._redis.zrange(self._keys.outbox_created(), 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest `limit` dead letters, newest first."""
        if limit <= 0:
            return []
        raws = await self._redis.lrange(self._keys.outbox_dead(), 0, limit - 1)
        letters = []
        for raw in raws:
            entry = orjson.loads(raw)
            # cjson writes a missing error as false
            error = entry["last_error"] if isinstance(entry["last_error"], str) else None
            letters.append(
                DeadLetter(
                    notification=_stored(entry["notification"], entry["attempts"], error),
                    reason=entry["reason"],
                    dead_at=float(entry["dead_at"]),
                )
            )
        return letters


def _stored(item: bytes | str, attempts: Any, error: Any) -> Notification:
    """The notification as enqueued, with the attempts and error recorded since."""
    notification = Notification.model_validate_json(item)
    update: dict[str, Any] = {}
    if attempts is not None:
        update["attempts"] = int(attempts)
    if error is not None:
        update["last_error"] = text(error)
    return notification.model_copy(update=update) if update else notification
