"""The label queue's Lua: the functions every script shares (live claims, a done task's
pruning, a task's view) and the scripts that only read or prune. The scripts that add,
claim, annotate and settle tasks are in label_queue_lua_writes.py.

Every script runs over one model's keys (`script_keys`), which share its hash tag, so a
Redis Cluster keeps them in one slot."""

from __future__ import annotations

from core.keys import Keys


def script_keys(keys: Keys, model: str) -> list[str]:
    """The model's keys, in the order every script reads them as KEYS (see COMMON)."""
    return [
        keys.label_tasks(model),
        keys.label_meta(model),
        keys.label_gold(model),
        keys.label_open(model),
        keys.label_adjudication(model),
        keys.label_done(model),
        keys.label_events(model),
        keys.label_annotations(model),
        keys.label_annotators(model),
        keys.label_progress(model),
        keys.label_holders(model),
        keys.label_outcomes(model),
        keys.label_touched(model),
        keys.label_stats(model),
    ]


# every script gets the same KEYS, in this order:
# 1 tasks, 2 meta, 3 gold, 4 open, 5 adjudication, 6 done, 7 events, 8 annotations,
# 9 annotators, 10 progress, 11 holders, 12 outcomes, 13 touched, 14 stats
COMMON = r"""
-- a task's live claims {annotator = lease end}, those ended by now left out; their
-- count, and whether any was left out
local function holders_of(id, now)
  local raw = redis.call('HGET', KEYS[11], id)
  local live, count, dropped = {}, 0, false
  if raw then
    for who, ends in pairs(cjson.decode(raw)) do
      if tonumber(ends) > now then
        live[who] = ends
        count = count + 1
      else
        dropped = true
      end
    end
  end
  return live, count, dropped
end

local function save_holders(id, holders, count)
  if count > 0 then
    redis.call('HSET', KEYS[11], id, cjson.encode(holders))
  else
    redis.call('HDEL', KEYS[11], id)
  end
end

-- a done task goes with everything it holds: its annotations (and who answered), its
-- outcome, its gold label and its event id (which a later run may queue again)
local function forget(id)
  local meta = cjson.decode(redis.call('HGET', KEYS[2], id))
  if redis.call('HGET', KEYS[7], meta.e) == id then redis.call('HDEL', KEYS[7], meta.e) end
  if redis.call('HDEL', KEYS[3], id) == 1 then redis.call('HINCRBY', KEYS[14], 'gold', -1) end
  local lines = redis.call('HGET', KEYS[8], id)
  if lines then
    for line in string.gmatch(lines, '[^\n]+') do
      redis.call('HDEL', KEYS[9], id .. '\0' .. cjson.decode(line).annotator)
    end
  end
  for _, k in ipairs({1, 2, 8, 10, 11, 12}) do redis.call('HDEL', KEYS[k], id) end
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[13], id)
  redis.call('HINCRBY', KEYS[14], 'tasks', -1)
  redis.call('HINCRBY', KEYS[14], 'pruned', 1)
end

-- at most `batch` done tasks, oldest first: those settled before `cutoff`, then those
-- beyond `most`. Returns how many went.
local function prune(cutoff, most, batch)
  local pruned = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. cutoff,
      'LIMIT', 0, batch)) do
    forget(id)
    pruned = pruned + 1
  end
  local excess = math.min(redis.call('ZCARD', KEYS[6]) - most, batch - pruned)
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[6], 0, excess - 1)) do
      forget(id)
      pruned = pruned + 1
    end
  end
  return pruned
end

-- {task JSON, annotation lines, gold JSON, outcome JSON, state}, '' for what is missing
local function view(id)
  local state = 'open'
  if redis.call('ZSCORE', KEYS[6], id) then
    state = 'done'
  elseif redis.call('ZSCORE', KEYS[5], id) then
    state = 'adjudication'
  end
  return {redis.call('HGET', KEYS[1], id), redis.call('HGET', KEYS[8], id) or '',
    redis.call('HGET', KEYS[3], id) or '', redis.call('HGET', KEYS[12], id) or '', state}
end
"""

# ARGV: cutoff, most done tasks kept, batch. Returns how many went.
PRUNE_SCRIPT = (
    COMMON
    + r"""
return prune(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)

# ARGV: task ids. Returns a view per task that exists, in order. Flagged read-only, so
# that Redis runs it at maxmemory too (it refuses any script that might write then).
VIEWS_SCRIPT = (
    "#!lua flags=no-writes\n"
    + COMMON
    + """
local found = {}
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], id) == 1 then found[#found + 1] = view(id) end
end
return found
"""
)
