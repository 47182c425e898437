"""The label queue's writing scripts: add, claim, annotate and settle, each one Lua
script over the model's keys (label_queue_lua.script_keys), so two replicas never hand a
task beyond its K."""

from __future__ import annotations

from core.stores.label_queue_lua import COMMON

# ARGV: now, queue max, gold share, then per sample: task id, event id, priority, meta
# JSON, task JSON, gold label JSON ('' when the sample has no ground truth). Returns
# {queued, duplicates, evicted}.
ADD_SCRIPT = (
    COMMON
    + r"""
local function evict(id)
  local meta = cjson.decode(redis.call('HGET', KEYS[2], id))
  if redis.call('HGET', KEYS[7], meta.e) == id then redis.call('HDEL', KEYS[7], meta.e) end
  for _, reason in ipairs(meta.r) do
    redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, -1)
  end
  if redis.call('HDEL', KEYS[3], id) == 1 then redis.call('HINCRBY', KEYS[14], 'gold', -1) end
  redis.call('HINCRBY', KEYS[14], 'tasks', -1)
  redis.call('HINCRBY', KEYS[14], 'evicted', 1)
  redis.call('ZREM', KEYS[4], id)
  for _, k in ipairs({1, 2, 10, 11}) do redis.call('HDEL', KEYS[k], id) end
end

local now, most, share = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local queued, duplicates, evicted = 0, 0, 0
local new = {}
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[7], ARGV[i + 1], id) == 1 then
    local total = redis.call('HINCRBY', KEYS[14], 'tasks', 1)
    if ARGV[i + 5] ~= '' then
      local gold = tonumber(redis.call('HGET', KEYS[14], 'gold') or '0')
      if gold < share * total then
        redis.call('HSET', KEYS[3], id, ARGV[i + 5])
        redis.call('HINCRBY', KEYS[14], 'gold', 1)
      end
    end
    redis.call('HSET', KEYS[1], id, ARGV[i + 4])
    redis.call('HSET', KEYS[2], id, ARGV[i + 3])
    redis.call('ZADD', KEYS[4], ARGV[i + 2], id)
    for _, reason in ipairs(cjson.decode(ARGV[i + 3]).r) do
      redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, 1)
    end
    new[id] = true
    queued = queued + 1
  else
    duplicates = duplicates + 1
  end
end

-- beyond the bound: the lowest priority first, of the tasks nobody has touched
local excess = redis.call('ZCARD', KEYS[4]) - most
local start = 0
while excess > 0 do
  local ids = redis.call('ZRANGE', KEYS[4], start, start + 99)
  if #ids == 0 then break end
  local kept = 0
  for _, id in ipairs(ids) do
    local _, claims = holders_of(id, now)
    if excess > 0 and claims == 0 and redis.call('HEXISTS', KEYS[8], id) == 0 then
      evict(id)
      excess = excess - 1
      evicted = evicted + 1
      if new[id] then queued = queued - 1 end
    else
      kept = kept + 1
    end
  end
  start = start + kept
end
return {queued, duplicates, evicted}
"""
)

# ARGV: now, annotator, limit, lease end, '1' for an adjudicator. Returns a view per
# claimed task, highest priority first.
CLAIM_SCRIPT = (
    COMMON
    + r"""
local now, annotator, limit, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local adjudicate = ARGV[5] == '1'
local queue = KEYS[4]
if adjudicate then queue = KEYS[5] end
local claimed, start = {}, 0
while #claimed < limit do
  local ids = redis.call('ZREVRANGE', queue, start, start + 99)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if #claimed < limit and redis.call('HEXISTS', KEYS[9], id .. '\0' .. annotator) == 0 then
      local holders, count, dropped = holders_of(id, now)
      if not holders[annotator] then
        -- an adjudication has one slot; an open task K, less the answers it has
        local slots, answered = 1, 0
        if not adjudicate then
          slots = cjson.decode(redis.call('HGET', KEYS[2], id)).k
          answered = tonumber(redis.call('HGET', KEYS[10], id) or '0')
        end
        if count + answered < slots then
          holders[annotator] = lease
          count = count + 1
          dropped = true
          claimed[#claimed + 1] = view(id)
        end
      end
      if dropped then save_holders(id, holders, count) end
    end
  end
  start = start + 100
end
return claimed
"""
)

# ARGV: task id, annotator, 'label' or 'skip', '1' for an adjudicator, annotation JSON,
# its time, now. Returns {'ok', view...} or {why not}.
ANNOTATE_SCRIPT = (
    COMMON
    + r"""
local id, annotator = ARGV[1], ARGV[2]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return {'unknown'} end
if redis.call('ZSCORE', KEYS[6], id) then return {'done'} end
local field = id .. '\0' .. annotator
if redis.call('HEXISTS', KEYS[9], field) == 1 then return {'annotated'} end
if ARGV[4] ~= '1' and redis.call('ZSCORE', KEYS[5], id) then return {'adjudication'} end
redis.call('HSET', KEYS[9], field, ARGV[3])
local holders, count, dropped = holders_of(id, tonumber(ARGV[7]))
if holders[annotator] then
  holders[annotator] = nil
  count = count - 1
  dropped = true
end
if dropped then save_holders(id, holders, count) end
local lines = redis.call('HGET', KEYS[8], id)
if lines then lines = lines .. '\n' .. ARGV[5] else lines = ARGV[5] end
redis.call('HSET', KEYS[8], id, lines)
if ARGV[3] == 'label' and ARGV[4] ~= '1' then redis.call('HINCRBY', KEYS[10], id, 1) end
redis.call('ZADD', KEYS[13], 'GT', ARGV[6], id)
local found = view(id)
table.insert(found, 1, 'ok')
return found
"""
)

# ARGV: task id, 'adjudication' or 'done', outcome JSON, now, the annotations the
# caller decided on ('' to not check), then for a task settled as done the pruning's
# cutoff ('' for none), most done tasks kept, batch. Returns {'ok', view...} (the view
# before pruning) or {why not}.
SETTLE_SCRIPT = (
    COMMON
    + r"""
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return {'unknown'} end
if redis.call('ZSCORE', KEYS[6], id) then return {'done'} end
if ARGV[5] ~= '' then
  local lines = redis.call('HGET', KEYS[8], id)
  local n = 0
  if lines then n = select(2, string.gsub(lines, '\n', '')) + 1 end
  if n ~= tonumber(ARGV[5]) then return {'stale'} end
end
local priority = redis.call('ZSCORE', KEYS[4], id) or redis.call('ZSCORE', KEYS[5], id)
redis.call('HDEL', KEYS[11], id)
redis.call('HSET', KEYS[12], id, ARGV[3])
redis.call('ZREM', KEYS[4], id)
if ARGV[2] == 'adjudication' then
  redis.call('ZADD', KEYS[5], priority, id)
else
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZADD', KEYS[6], ARGV[4], id)
  for _, reason in ipairs(cjson.decode(redis.call('HGET', KEYS[2], id)).r) do
    redis.call('HINCRBY', KEYS[14], 'reason:' .. reason, -1)
  end
end
local found = view(id)
if ARGV[2] == 'done' and ARGV[6] ~= '' then
  prune(ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
end
table.insert(found, 1, 'ok')
return found
"""
)
