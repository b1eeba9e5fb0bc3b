//! The Lua sources. Every script takes the agent's four indexes as `KEYS[1..4]`
//! (timeline, steps, importance, expiry) and `ARGV[1..3]` = entry key prefix, now (Unix ms),
//! cleanup batch. Entry keys are built from the prefix; they share the indexes' hash tag,
//! so on Redis Cluster they live in the same slot.

/// The fields a query returns for each entry, in this order (the prelude's `peek`). The
/// first, the importance, is in every stored entry of every schema version, so a nil first
/// value means the entry is gone.
pub(crate) const QUERY_FIELDS: [&str; 4] = ["i", "e", "r", "a"];

macro_rules! prelude {
    () => {
        r#"
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local function drop(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
end
local function cleanup()
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(due) do
    if redis.call('EXISTS', prefix .. id) == 0 then drop(id) end
  end
end
local function fetch(id, bump)
  local key = prefix .. id
  if not bump then
    local h = redis.call('HGETALL', key)
    if #h == 0 then
      drop(id)
      return nil
    end
    return h
  end
  local h = redis.call('HGETALL', key)
  if #h == 0 then
    drop(id)
    return nil
  end
  local r = tostring(redis.call('HINCRBY', key, 'r', 1))
  redis.call('HSET', key, 'a', ARGV[2])
  -- The reply shows the counters as they are now.
  local seen_r, seen_a = false, false
  for i = 1, #h, 2 do
    if h[i] == 'r' then
      h[i + 1] = r
      seen_r = true
    elseif h[i] == 'a' then
      h[i + 1] = ARGV[2]
      seen_a = true
    end
  end
  if not seen_r then
    h[#h + 1] = 'r'
    h[#h + 1] = r
  end
  if not seen_a then
    h[#h + 1] = 'a'
    h[#h + 1] = ARGV[2]
  end
  return h
end
local function peek(id)
  local v = redis.call('HMGET', prefix .. id, 'i', 'e', 'r', 'a')
  if not v[1] then
    drop(id)
    return nil
  end
  return v
end
"#
    };
}

/// Stores one entry atomically. `ARGV[4]` ttl ms, `[5]` timestamp, `[6]` step,
/// `[7]` importance, `[8]` memory id, `[9..]` field/value pairs. Returns the timeline's
/// size.
///
/// The four indexes always hold the same members and get their TTL together, so only the
/// timeline's is read: when it ends sooner than the new entry's, all four are set to the
/// TTL plus a slack of 1/64 of it (at least 1 s). So an index outlives every entry it
/// lists, its TTL is only ever extended, and it is re-armed once per slack period rather
/// than on every write.
pub(crate) const WRITE: &str = concat!(
    prelude!(),
    r#"
local ttl = tonumber(ARGV[4])
local id = ARGV[8]
local key = prefix .. id
redis.call('HSET', key, unpack(ARGV, 9))
redis.call('PEXPIRE', key, ttl)
redis.call('ZADD', KEYS[1], ARGV[5], id)
redis.call('ZADD', KEYS[2], ARGV[6], id)
redis.call('ZADD', KEYS[3], ARGV[7], id)
redis.call('ZADD', KEYS[4], now + ttl, id)
if redis.call('PTTL', KEYS[1]) < ttl then
  local keep = ttl + math.max(math.floor(ttl / 64), 1000)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
end
return redis.call('ZCARD', KEYS[1])
"#
);

/// Reads one entry: `ARGV[4]` memory id, `[5]` `1` to bump `r` and `a`. Returns the flat
/// field list, or nil (and drops the id from the indexes) when the entry is gone.
pub(crate) const GET: &str = concat!(
    prelude!(),
    r#"
local h = fetch(ARGV[4], ARGV[5] == '1')
if h == nil then return false end
return h
"#
);

/// A bounded index query. `ARGV[4]` index (1..4), `[5]` `rank` or `score`, `[6]` min,
/// `[7]` max, `[8]` `1` for descending, `[9]` offset, `[10]` count. Removes expired
/// members first. Returns `id1, values1, id2, values2, ...`, where each `values` is the
/// entry's fields [`QUERY_FIELDS`] in that order (nil when absent): positional, so the
/// reply carries no field names. A query never counts as a retrieval.
pub(crate) const QUERY: &str = concat!(
    prelude!(),
    r#"
cleanup()
local key = KEYS[tonumber(ARGV[4])]
local off = tonumber(ARGV[9])
local cnt = tonumber(ARGV[10])
local ids
if ARGV[5] == 'rank' then
  if ARGV[8] == '1' then
    ids = redis.call('ZREVRANGE', key, off, off + cnt - 1)
  else
    ids = redis.call('ZRANGE', key, off, off + cnt - 1)
  end
elseif ARGV[8] == '1' then
  ids = redis.call('ZREVRANGEBYSCORE', key, ARGV[7], ARGV[6], 'LIMIT', off, cnt)
else
  ids = redis.call('ZRANGEBYSCORE', key, ARGV[6], ARGV[7], 'LIMIT', off, cnt)
end
local out = {}
for _, id in ipairs(ids) do
  local h = peek(id)
  if h ~= nil then
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
"#
);

/// Removes expired members (bounded by the cleanup batch) and returns the live count.
pub(crate) const COUNT: &str = concat!(
    prelude!(),
    r#"
cleanup()
return redis.call('ZCARD', KEYS[1])
"#
);

/// Deletes the entries `ARGV[4..]` and their index members, 512 at a time (one `DEL` and
/// one `ZREM` per index for each 512). Returns how many entries existed.
pub(crate) const DELETE: &str = concat!(
    prelude!(),
    r#"
local n = 0
for first = 4, #ARGV, 512 do
  local ids, keys = {}, {}
  for i = first, math.min(first + 511, #ARGV) do
    ids[#ids + 1] = ARGV[i]
    keys[#keys + 1] = prefix .. ARGV[i]
  end
  n = n + redis.call('DEL', unpack(keys))
  for k = 1, 4 do redis.call('ZREM', KEYS[k], unpack(ids)) end
end
return n
"#
);

/// Deletes every entry the timeline lists, and the indexes. Returns how many ids it listed.
pub(crate) const CLEAR: &str = concat!(
    prelude!(),
    r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for first = 1, #ids, 512 do
  local keys = {}
  for i = first, math.min(first + 511, #ids) do
    keys[#keys + 1] = prefix .. ids[i]
  end
  redis.call('DEL', unpack(keys))
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return #ids
"#
);

/// Adds `ARGV[5]` to the importance of entry `ARGV[4]`, clamped to [0, 1], in the hash
/// and the index. Returns the new importance as a string, or nil when the entry is gone.
pub(crate) const IMPORTANCE: &str = concat!(
    prelude!(),
    r#"
local id = ARGV[4]
local key = prefix .. id
if redis.call('EXISTS', key) == 0 then
  drop(id)
  return false
end
local v = (tonumber(redis.call('HGET', key, 'i')) or 0) + tonumber(ARGV[5])
if v < 0 then v = 0 end
if v > 1 then v = 1 end
local s = string.format('%.17g', v)
redis.call('HSET', key, 'i', s)
redis.call('ZADD', KEYS[3], s, id)
return s
"#
);
