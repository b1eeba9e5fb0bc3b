//! The Lua sources. Each takes every key it touches in `KEYS` and builds none: the
//! entry's index members are spelled from the index fields stored in the entry itself
//! (bytes 13..77, see the codec), so no script needs to decode an entry.

/// Deletes entries and their index members. `KEYS[1]` the agent's index, `KEYS[2..]` the
/// entries' keys; `ARGV[i]` the memory id of `KEYS[i + 1]`. An entry already gone leaves
/// its members to cleanup (its expiry member names them). Returns how many entries
/// existed.
pub(crate) const DELETE: &str = r#"
local n = 0
for i = 2, #KEYS do
  local f = redis.call('GETRANGE', KEYS[i], 13, 76)
  if #f == 64 then
    local id = ARGV[i - 1]
    redis.call('ZREM', KEYS[1], 't' .. string.sub(f, 17, 32) .. id,
      's' .. string.sub(f, 33, 48) .. id, 'i' .. string.sub(f, 49, 64) .. id, 'x' .. f .. id)
    n = n + redis.call('DEL', KEYS[i])
  end
end
return n
"#;

/// Replaces an entry's importance if it is still the one the caller read (a
/// compare-and-set: the client computes the new value, since Lua 5.1 cannot spell a
/// float's bits). `KEYS[1]` the entry, `KEYS[2]` the agent's index; `ARGV[1]` the memory
/// id, `[2]` the importance as read, `[3]` the new one (16 hex digits each). Returns 1 when
/// replaced, 0 when the importance changed since it was read, -1 when the entry is gone.
pub(crate) const IMPORTANCE: &str = r#"
local f = redis.call('GETRANGE', KEYS[1], 13, 76)
if #f ~= 64 then return -1 end
if string.sub(f, 49, 64) ~= ARGV[2] then return 0 end
local id = ARGV[1]
local moved = string.sub(f, 1, 48) .. ARGV[3]
redis.call('SETRANGE', KEYS[1], 61, ARGV[3])
redis.call('ZREM', KEYS[2], 'i' .. ARGV[2] .. id, 'x' .. f .. id)
redis.call('ZADD', KEYS[2], 0, 'i' .. ARGV[3] .. id, 0, 'x' .. moved .. id)
return 1
"#;

/// Replaces an agent's vector block with its compacted copy if no other compaction ran
/// since the caller read it (its header, which carries a generation, is unchanged),
/// keeping whatever writes appended after the bytes the caller read. `KEYS[1]` the
/// block; `ARGV[1]` the header as read, `[2]` the length read, `[3]` the compacted block
/// (with the next generation), `[4]` its TTL in ms. Returns 1 when replaced, 0 when not.
pub(crate) const COMPACT_VECTORS: &str = r#"
local head = redis.call('GETRANGE', KEYS[1], 0, #ARGV[1] - 1)
if head ~= ARGV[1] then return 0 end
local tail = redis.call('GETRANGE', KEYS[1], ARGV[2], -1)
redis.call('SET', KEYS[1], ARGV[3] .. tail, 'PX', ARGV[4])
return 1
"#;
