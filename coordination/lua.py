"""The Lua scripts of the shared state: each check-and-change is one atomic round trip.

Times come from Redis (``TIME``), never from a worker's clock, so leases and buckets agree
across hosts. Leaky buckets mirror ``coordination.limits.local`` (level ``l`` at time ``t``,
leaking ``quota / 60 000`` per millisecond); slot admission mirrors ``coordination.slots.rules``
rule for rule. Numbers are returned as integers (Redis truncates Lua numbers), so levels
come back in thousandths.

Every script that decides something first checks the calling worker's *marker* key, which
the worker's ``LeaseKeeper`` keeps alive: a missing marker means Redis lost this worker's
state (a restart without persistence, a flush), and the script answers ``STATE_LOST``
without deciding, so the worker puts its leases back before anything is decided without
them. Admission and slot scripts are idempotent for their entry or lease id, so a call
retried after a dropped connection never charges twice.
"""

from __future__ import annotations

__all__ = [
    "ADMIT",
    "FINISH",
    "LEAVE",
    "READ",
    "RENEW",
    "SCRIPTS",
    "SLOT_ACQUIRE",
    "SLOT_RELEASE",
    "SLOT_USAGE",
    "STATE_LOST",
]

#: First element of a deciding script's answer when the worker's marker is gone.
STATE_LOST = -9


def _marked(key: int) -> str:
    """Stop at once, deciding nothing, when the worker's marker ``KEYS[key]`` is gone."""
    return f"if redis.call('EXISTS', KEYS[{key}]) == 0 then return {{{STATE_LOST}}} end\n"


_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

_LEAK = """
local function leak(key, rate)
  local v = redis.call('HMGET', key, 'l', 't')
  local level = (tonumber(v[1]) or 0) - (now - (tonumber(v[2]) or now)) * rate
  if level < 0 then level = 0 end
  return level
end
local function store(key, level, rate)
  redis.call('HSET', key, 'l', tostring(level), 't', now)
  redis.call('PEXPIRE', key, math.ceil(level / rate) + 1000)
end
"""

# KEYS: requests bucket, tokens bucket, in-flight zset, worker marker.
# ARGV: rpm, concurrent, tpm, tokens, entry, lease ttl ms.
ADMIT = (
    _marked(4)
    + _NOW
    + _LEAK
    + """
local rpm, conc, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local amount = math.min(tonumber(ARGV[4]), tpm)
local ok_r, lr, wr = 1, 0, 0
if rpm > 0 then
  lr = leak(KEYS[1], rpm / 60000)
  if lr + 1 > rpm then ok_r = 0; wr = (lr + 1 - rpm) / (rpm / 60000) end
end
local ok_c, n, again = 1, 0, false
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  n = redis.call('ZCARD', KEYS[3])
  again = redis.call('ZSCORE', KEYS[3], ARGV[5]) ~= false
  if n >= conc and not again then ok_c = 0 end
end
local ok_t, lt, wt = 1, 0, 0
if tpm > 0 then
  lt = leak(KEYS[2], tpm / 60000)
  if amount > 0 and lt + amount > tpm then ok_t = 0; wt = (lt + amount - tpm) / (tpm / 60000) end
end
local allowed = 0
if again then
  -- a retried call whose first attempt was applied: admitted once, charged once
  allowed, ok_r, ok_t, wr, wt = 1, 1, 1, 0, 0
elseif ok_r == 1 and ok_c == 1 and ok_t == 1 then
  allowed = 1
  if rpm > 0 then lr = lr + 1; store(KEYS[1], lr, rpm / 60000) end
  if conc > 0 then
    n = n + 1
    local ttl = tonumber(ARGV[6])
    redis.call('ZADD', KEYS[3], now + ttl, ARGV[5])
    redis.call('PEXPIRE', KEYS[3], ttl * 3)
  end
  if tpm > 0 and amount > 0 then lt = lt + amount; store(KEYS[2], lt, tpm / 60000) end
end
return {allowed, ok_r, math.floor(lr * 1000), math.ceil(wr), ok_c, n,
        ok_t, math.floor(lt * 1000), math.ceil(wt)}
"""
)

# One cheap read: the requests bucket of ADMIT, alone. KEYS: reads bucket. ARGV: quota.
READ = (
    _NOW
    + _LEAK
    + """
local quota = tonumber(ARGV[1])
local level = leak(KEYS[1], quota / 60000)
local ok, wait = 1, 0
if level + 1 > quota then
  ok = 0; wait = (level + 1 - quota) / (quota / 60000)
else
  level = level + 1; store(KEYS[1], level, quota / 60000)
end
return {ok, math.floor(level * 1000), math.ceil(wait)}
"""
)

# KEYS: tokens bucket, in-flight zset. ARGV: tpm, entry, token delta.
FINISH = (
    _NOW
    + _LEAK
    + """
redis.call('ZREM', KEYS[2], ARGV[2])
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[3])
if tpm > 0 and delta ~= 0 then
  local level = leak(KEYS[1], tpm / 60000) + delta
  if level < 0 then level = 0 end
  store(KEYS[1], level, tpm / 60000)
end
return 1
"""
)

# Renews every lease a worker holds and puts back those Redis no longer has (a restart
# without persistence, or expired while the worker stalled): the worker still runs them.
# KEYS: the worker's marker, then per lease its sorted set - plus, for a slot lease, the
# owners and per-user count hashes. ARGV: lease ttl ms, marker ttl ms, then per lease its
# member and owner ('' for an in-flight entry). Returns the 1-based numbers of the leases
# that were put back.
RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[2]))
local k, restored = 2, {}
for i = 3, #ARGV, 2 do
  local member, user = ARGV[i], ARGV[i + 1]
  local set = KEYS[k]
  local present = redis.call('ZSCORE', set, member)
  redis.call('ZADD', set, now + ttl, member)
  if user == '' then
    redis.call('PEXPIRE', set, ttl * 3)  -- an idle user's in-flight set goes by itself
    k = k + 1
  else
    -- a provider's lease set never expires as a whole: its counts live in two hashes
    if redis.call('HSETNX', KEYS[k + 1], member, user) == 1 then
      redis.call('HINCRBY', KEYS[k + 2], user, 1)
    end
    k = k + 3
  end
  if not present then restored[#restored + 1] = (i - 1) / 2 end
end
return restored
"""
)

# Slot keys: 1 leases (id -> expiry), 2 owners (id -> user), 3 held (user -> n),
# 4 waiting users (user -> until), 5 queue (ticket -> order), 6 ticket expiry, 7 clock,
# 8 the calling worker's marker.
# A ticket is "<32 hex>:<user>", so its owner is string.sub(ticket, 34).
_SLOT_COMMON = (
    _marked(8)
    + _NOW
    + """
local function level_if_empty()
  if redis.call('ZCARD', KEYS[5]) == 0 then
    local served = redis.call('HGET', KEYS[7], 'v')
    redis.call('DEL', KEYS[7])
    if served then redis.call('HSET', KEYS[7], 'v', served) end
  end
end
local function cleanup()
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(dead) do
    local who = redis.call('HGET', KEYS[2], id)
    if who then
      if redis.call('HINCRBY', KEYS[3], who, -1) <= 0 then redis.call('HDEL', KEYS[3], who) end
      redis.call('HDEL', KEYS[2], id)
    end
    redis.call('ZREM', KEYS[1], id)
  end
  local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
  for _, ticket in ipairs(gone) do
    redis.call('ZREM', KEYS[5], ticket)
    redis.call('ZREM', KEYS[6], ticket)
  end
  if #gone > 0 then level_if_empty() end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
end
cleanup()
"""
)

# ARGV: user, lease id, capacity, user cap, lease ttl ms, fair window ms, ticket ('' = none),
# ticket ttl ms, queue max. Returns {1 | 0 | -1 (queue full), in use, queue length}.
SLOT_ACQUIRE = (
    _SLOT_COMMON
    + """
local user, lease, capacity, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ticket = ARGV[7]
local in_use = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], lease) then
  return {1, in_use, redis.call('ZCARD', KEYS[5])}  -- a retried call that was applied
end
local held = tonumber(redis.call('HGET', KEYS[3], user) or '0')
local qlen = redis.call('ZCARD', KEYS[5])
local free = capacity - in_use
local ok = free > 0 and held < cap
if ok and free == 1 and held >= 1 and capacity > 1 then
  local others = redis.call('ZCARD', KEYS[4])
  if redis.call('ZSCORE', KEYS[4], user) then others = others - 1 end
  if others > 0 then ok = false end
end
if ok and qlen > 0 then
  local ahead = 0
  for _, queued in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
    if queued == ticket then break end
    local h = tonumber(redis.call('HGET', KEYS[3], string.sub(queued, 34)) or '0')
    if h < cap then ahead = ahead + 1 end
  end
  if ahead >= free then ok = false end
end
if ok then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), lease)
  redis.call('HSET', KEYS[2], lease, user)
  redis.call('HINCRBY', KEYS[3], user, 1)
  redis.call('ZREM', KEYS[4], user)
  if ticket ~= '' then
    local order = redis.call('ZSCORE', KEYS[5], ticket)
    if order then
      redis.call('ZREM', KEYS[5], ticket)
      redis.call('ZREM', KEYS[6], ticket)
      local start = math.floor(tonumber(order) / 1000000)
      if start > tonumber(redis.call('HGET', KEYS[7], 'v') or '0') then
        redis.call('HSET', KEYS[7], 'v', start)
      end
      level_if_empty()
    end
  end
  return {1, in_use + 1, redis.call('ZCARD', KEYS[5])}
end
if held == 0 then redis.call('ZADD', KEYS[4], now + tonumber(ARGV[6]), user) end
if ticket ~= '' then
  if not redis.call('ZSCORE', KEYS[5], ticket) then
    if qlen >= tonumber(ARGV[9]) then return {-1, in_use, qlen} end
    local served = tonumber(redis.call('HGET', KEYS[7], 'v') or '0')
    local last = tonumber(redis.call('HGET', KEYS[7], 'u:' .. user) or '0')
    local start = math.max(served, last) + 1
    redis.call('HSET', KEYS[7], 'u:' .. user, start)
    local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
    redis.call('ZADD', KEYS[5], string.format('%.0f', start * 1000000 + seq % 1000000), ticket)
    redis.call('PEXPIRE', KEYS[7], 3600000)
    qlen = qlen + 1
  end
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[8]), ticket)
end
return {0, in_use, qlen}
"""
)

# KEYS: leases, owners, held. ARGV: lease id. Returns slots in use.
SLOT_RELEASE = """
local who = redis.call('HGET', KEYS[2], ARGV[1])
if who then
  if redis.call('HINCRBY', KEYS[3], who, -1) <= 0 then redis.call('HDEL', KEYS[3], who) end
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""

# The first seven slot keys; ARGV: ticket.
LEAVE = """
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('ZCARD', KEYS[5]) == 0 then
  local served = redis.call('HGET', KEYS[7], 'v')
  redis.call('DEL', KEYS[7])
  if served then redis.call('HSET', KEYS[7], 'v', served) end
end
return 1
"""

# The eight slot keys. Returns {in use, queue length} after dropping expired leases.
SLOT_USAGE = (
    _SLOT_COMMON
    + """
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[5])}
"""
)

#: Every script, loaded once at startup so that the first EVALSHA never misses.
SCRIPTS = (ADMIT, FINISH, READ, RENEW, SLOT_ACQUIRE, SLOT_RELEASE, LEAVE, SLOT_USAGE)
