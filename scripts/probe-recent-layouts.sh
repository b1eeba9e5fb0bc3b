#!/usr/bin/env bash
# What one `recent(20)` costs the server, per storage layout, with no client in the way.
#
# Starts a private redis-server on a free port, fills one agent with 1,000 memories in two
# layouts, and runs each read 50,000 times with redis-benchmark (64 connections); prints the
# server's own time per call (INFO commandstats, usec_per_call):
#
#   hash+lua  the layout memory-tiers uses: a hash per memory (fields i e r a),
#             read by a Lua script with one HMGET per entry, as the tiers' query script does
#             (score-range queries, and recent() where SORT_RO is refused)
#   hash+sort the same hashes read by SORT timeline BY nosort DESC LIMIT 0 20 GET # GET
#             <prefix>*->i ... GET <prefix>*->a: no Lua, but one key lookup per field;
#             what recent() sends (memory-tiers/src/sort_read.rs)
#   sort      one packed string per memory, read by SORT timeline BY nosort DESC LIMIT 0 20
#             GET # GET <prefix>*: no Lua, one key lookup per entry
#
# Usage: scripts/probe-recent-layouts.sh
set -euo pipefail

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "needs redis-server and redis-benchmark (apt-get install -y redis-server redis-tools)" >&2
  exit 1
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --save '' --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
cli() { redis-cli -p "$port" "$@"; }
for _ in $(seq 50); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done

header='{"g":"agent-1","s":123,"t":1764160000000,"m":"observation","c":1764160000000,"l":0,"r":"stm"}'
body='{"observation":"the bench agent saw something","step":123}'
cli EVAL "
for i = 1, 1000 do
  local id = string.format('01JXYZ%020d', i)
  redis.call('HSET', 'h:{a}:mem:' .. id, 'i', '0.5', 'e', ARGV[1] .. ARGV[2], 'r', '0', 'a', '1764160000000')
  redis.call('SET', 's:{a}:mem:' .. id, ARGV[1] .. ARGV[2] .. '|j|0.5|0|1764160000000')
  redis.call('ZADD', 'h:{a}:timeline', i, id)
  redis.call('ZADD', 's:{a}:timeline', i, id)
end" 0 "$header" "$body" >/dev/null

hash_lua=$(cli SCRIPT LOAD "
local ids = redis.call('ZREVRANGE', KEYS[1], 0, 19)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HMGET', ARGV[1] .. id, 'i', 'e', 'r', 'a')
end
return out")

measure() { # name command...
  local name=$1; shift
  cli CONFIG RESETSTAT >/dev/null
  redis-benchmark -p "$port" -c 64 -n 50000 -q "$@" >/dev/null 2>&1
  local cmd; cmd=$(echo "$1" | tr 'A-Z' 'a-z')
  printf '%-9s %s\n' "$name" "$(cli INFO commandstats | grep "^cmdstat_$cmd:" | tr -d '\r' | sed 's/.*usec_per_call=\([0-9.]*\).*/\1 µs per recent(20) in the server/')"
}
measure hash+lua EVALSHA "$hash_lua" 1 'h:{a}:timeline' 'h:{a}:mem:'
p='h:{a}:mem:*'
measure hash+sort SORT 'h:{a}:timeline' BY nosort DESC LIMIT 0 20 GET '#' \
  GET "$p->i" GET "$p->e" GET "$p->r" GET "$p->a"
measure sort SORT 's:{a}:timeline' BY nosort DESC LIMIT 0 20 GET '#' GET 's:{a}:mem:*'
