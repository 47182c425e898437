"""Alert states and silences, kept in Redis beside the notification outbox.

States live in one hash per model (alert id -> AlertState JSON), under the same hash
tag as the outbox, so that a state change and the notifications it causes commit in
one MULTI. A set names the models that have states, for listing across models."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from core.alerts import AlertState, Notification, Silence
from core.keys import Keys
from core.redis_types import text
from core.stores.outbox import Outbox

# KEYS: silences hash, expiry index. ARGV: now. Silences whose end is at or before now
# no longer cover anything (Silence.covers): they go.
PRUNE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[1], id) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
"""
PRUNE_SCRIPT = PRUNE + "return redis.call('HVALS', KEYS[1])\n"
# ARGV: now, id, JSON, end, most silences. One script, so that the cap holds against
# concurrent adds; replacing a silence (same id) is always allowed. Returns 1, or -1
# when it would be one too many.
ADD_SILENCE_SCRIPT = (
    PRUNE
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
"""
)


class SilenceLimitError(Exception):
    """Adding the silence would exceed the cap on silences."""

    def __init__(self, max_silences: int) -> None:
        super().__init__(
            f"{max_silences} silences exist, the most allowed: delete one or let one end first"
        )
        self.max_silences = max_silences


# a judge that lost a race loads the states again and judges again, this many times
JUDGE_ATTEMPTS = 5
# what a judgement of the stored states decides: the changed states and their notifications
Judgement = tuple[Sequence[AlertState], Sequence[Notification]]


class StaleRunError(Exception):
    """A newer run of the model was judged already: this one's verdict is history."""


def is_blank(state: AlertState) -> bool:
    """Nothing to remember: an absent state reads the same (keeps the data small)."""
    return state.state == "inactive" and state.bad_runs == 0 and state.good_runs == 0


class AlertStore:
    def __init__(self, redis: Redis, keys: Keys, max_silences: int = 1000) -> None:
        self._redis = redis
        self._keys = keys
        self._max_silences = max_silences
        self._prune = redis.register_script(PRUNE_SCRIPT)
        self._add_silence = redis.register_script(ADD_SILENCE_SCRIPT)

    # --- states ---------------------------------------------------------------------------

    async def load(self, model: str) -> dict[str, AlertState]:
        """The model's stored alert states by alert id; a blank one is absent."""
        raws = await self._redis.hvals(self._keys.alert_states(model))
        states = (AlertState.model_validate_json(raw) for raw in raws)
        return {state.id: state for state in states}

    # builtins.list below: inside this class, `list` is the method
    async def list(
        self, model: str | None = None, states: Collection[str] | None = None
    ) -> builtins.list[AlertState]:
        """Stored alert states of one model or all, optionally only those whose status is
        in `states`; sorted by model, rule and column."""
        if model is not None:
            models = [model]
        else:
            models = sorted(text(m) for m in await self._redis.smembers(self._keys.alert_models()))
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in models:
                pipe.hvals(self._keys.alert_states(name))
            replies: builtins.list[builtins.list[bytes]] = await pipe.execute()
        found = [AlertState.model_validate_json(raw) for reply in replies for raw in reply]
        if states is not None:
            found = [state for state in found if state.state in states]
        return sorted(found, key=lambda s: (s.model, s.rule, s.column or ""))

    async def judge(
        self,
        model: str,
        run_at: float,
        decide: Callable[[dict[str, AlertState]], Awaitable[Judgement]],
        outbox: Outbox,
        now: float,
    ) -> dict[str, AlertState]:
        """Load the model's states, let `decide` judge the run against them, and commit
        what it decided, only if no other judge of the model committed meanwhile (WATCH:
        on a conflict it loads and judges again) and no newer run (`run_at`, its start)
        was judged before it: a slow run finishing after its successor must not fire
        again what the successor resolved (StaleRunError). Returns the states judged."""
        states_key, judged_key = self._keys.alert_states(model), self._keys.alert_judged(model)
        for _ in range(JUDGE_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(states_key, judged_key)
                    newest = await pipe.get(judged_key)
                    if newest is not None and float(newest) > run_at:
                        raise StaleRunError(model)
                    raws = await pipe.hvals(states_key)
                    states = {s.id: s for s in map(AlertState.model_validate_json, raws)}
                    changed, notifications = await decide(states)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._write(pipe, changed)
                    pipe.set(judged_key, repr(run_at))
                    outbox.enqueue_commands(pipe, notifications, now)
                    await pipe.execute()
                    return states
                except WatchError:
                    continue
        raise RuntimeError(f"the alert states of {model!r} kept changing under its judge")

    def _write(self, pipe: Pipeline, states: Sequence[AlertState]) -> None:
        for model, group in _by_model(states).items():
            key = self._keys.alert_states(model)
            kept: dict[FieldT, EncodableT] = {
                state.id: state.model_dump_json() for state in group if not is_blank(state)
            }
            blank = [state.id for state in group if is_blank(state)]
            if kept:
                pipe.hset(key, mapping=kept)
                pipe.sadd(self._keys.alert_models(), model)
            if blank:
                pipe.hdel(key, *blank)

    async def commit(
        self,
        states: Sequence[AlertState],
        notifications: Sequence[Notification],
        outbox: Outbox,
        now: float,
    ) -> None:
        """Write the changed states and enqueue their notifications in one MULTI: both
        land, or (Redis gone mid-way) neither. Blank states are deleted, not stored."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self._write(pipe, states)
            outbox.enqueue_commands(pipe, notifications, now)
            await pipe.execute()

    async def forget_model(self, model: str) -> bool:
        """A deleted model's alert states and silences go (its notifications already in
        the outbox are still delivered). True when there was anything to remove."""
        silenced = [s.id for s in await self.silences() if s.model == model]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.alert_states(model))
            pipe.srem(self._keys.alert_models(), model)
            pipe.delete(self._keys.alert_judged(model))
            if silenced:
                pipe.hdel(self._keys.silences(), *silenced)
                pipe.zrem(self._keys.silence_expiries(), *silenced)
            replies = await pipe.execute()
        return any(bool(reply) for reply in replies)

    # --- silences -------------------------------------------------------------------------

    def _silence_keys(self) -> builtins.list[str]:
        return [self._keys.silences(), self._keys.silence_expiries()]

    async def add_silence(self, silence: Silence) -> None:
        """Store (or replace, by id) a silence. Silences ended by its `created_at` are
        pruned first, so that they do not count against the cap; SilenceLimitError
        when the cap is reached all the same."""
        outcome = await self._add_silence(
            keys=self._silence_keys(),
            args=[
                silence.created_at.timestamp(),
                silence.id,
                silence.model_dump_json(),
                silence.until.timestamp(),
                self._max_silences,
            ],
        )
        if outcome == -1:
            raise SilenceLimitError(self._max_silences)

    async def silences(self, now: datetime | None = None) -> builtins.list[Silence]:
        """Every stored silence, oldest first; given `now`, those ended by then are
        removed and left out."""
        if now is None:
            raws = await self._redis.hvals(self._keys.silences())
        else:
            raws = await self._prune(keys=self._silence_keys(), args=[now.timestamp()])
        found = [Silence.model_validate_json(raw) for raw in raws]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    async def delete_silence(self, silence_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.silences(), silence_id)
            pipe.zrem(self._keys.silence_expiries(), silence_id)
            removed, _ = await pipe.execute()
        return bool(removed)


def _by_model(states: Iterable[AlertState]) -> dict[str, list[AlertState]]:
    grouped: dict[str, list[AlertState]] = {}
    for state in states:
        grouped.setdefault(state.model, []).append(state)
    return grouped
