#!/usr/bin/env bash
# Instructions per SET/GET operation of the raw driver, the backend alone and
# ResilientClient, per backend, counted by valgrind's callgrind: the same count on every
# run, whatever else the machine is doing (wall-clock and CPU-time figures are in the
# bench).
#
#   scripts/overhead.sh                      # both backends, concurrency 1 and 16
#   BACKENDS=fred CONCURRENCY=16 scripts/overhead.sh
#   ANNOTATE=1 scripts/overhead.sh           # also the top functions by inclusive cost
#   CLUSTER=1 scripts/overhead.sh            # against a 3-master Redis Cluster: raw is
#                                            # then the driver's own cluster client
#
# Modes: raw (the driver), backend (KvBackend alone), resilient (the client with its
# default parts) and resilient-bare (the client with per-call observability off).
#
# Each (backend, mode, concurrency) runs twice, with OPS_SMALL and OPS_LARGE measured
# operations after the same warm-up; instructions per operation are the difference of the
# two totals over the difference of the operation counts. Counting starts when the measured
# load does (callgrind's --zero-before on the binary's `measured_load_starts`), so start-up,
# connecting, the warm-up and one-time work bounded by wall time (the latency clock's
# calibration) are not counted, and the process's end cancels out. The server is private
# (a free port, no persistence), pinned to one CPU and the client to another when the
# machine has two.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"redis-rs fred"}
MODES=${MODES:-"raw backend resilient resilient-bare"}
CONCURRENCY=${CONCURRENCY:-"1 16"}
OPS_SMALL=${OPS_SMALL:-2000}
OPS_LARGE=${OPS_LARGE:-12000}
ANNOTATE=${ANNOTATE:-0}
OUT=${OUT:-target/overhead}

for tool in valgrind redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "overhead.sh needs $tool (apt-get install -y valgrind redis-server)" >&2; exit 1; }
done

cargo build --release -q -p examples --all-features --bin overhead
bin=target/release/overhead
mkdir -p "$OUT"

server_pin=() client_pin=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c 1) client_pin=(taskset -c 0)
fi

# A private server on the first free port from $1 (its port in $started_port).
start_server() { # first-port dir [extra redis-server arguments]
  local port=$1 dir=$2
  shift 2
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  mkdir -p "$dir"
  "${server_pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize no --logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
  servers+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  started_port=$port
}
servers=()
dir=$(mktemp -d)
trap 'kill "${servers[@]}" 2>/dev/null; wait "${servers[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
if [ "${CLUSTER:-0}" = 1 ]; then
  ports=()
  next=6390
  for i in 1 2 3; do
    start_server "$next" "$dir/$i" --cluster-enabled yes --cluster-config-file nodes.conf
    ports+=("$started_port")
    next=$((started_port + 1))
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
  url="redis://127.0.0.1:${ports[0]}?cluster=127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
else
  start_server 6390 "$dir/single"
  url="redis://127.0.0.1:$started_port"
fi

# Total instructions (Ir) of one callgrind run.
count() { # backend mode concurrency ops file
  if ! "${client_pin[@]}" valgrind --tool=callgrind --callgrind-out-file="$5" \
    --zero-before='overhead::measured_load_starts' \
    "$bin" --url "$url" --backend "$1" --mode "$2" --concurrency "$3" --ops "$4" >/dev/null 2>"$5.log"; then
    echo "overhead $1 $2 c=$3 failed:" >&2
    tail -5 "$5.log" >&2
    return 1
  fi
  awk '/^(summary|totals):/ { print $2; exit }' "$5"
}

echo "placement: server ${server_pin[*]:-unpinned}, client ${client_pin[*]:-unpinned}"
printf '%-9s %5s  %-14s %14s\n' backend conc mode "instr/op"
declare -A per_op
for backend in $BACKENDS; do
  for c in $CONCURRENCY; do
    for mode in $MODES; do
      small=$(count "$backend" "$mode" "$c" "$OPS_SMALL" "$OUT/$backend-$mode-c$c-small.out") || exit 1
      large=$(count "$backend" "$mode" "$c" "$OPS_LARGE" "$OUT/$backend-$mode-c$c.out") || exit 1
      per_op[$backend,$mode,$c]=$(( (large - small) / (OPS_LARGE - OPS_SMALL) ))
      printf '%-9s %5s  %-14s %14s\n' "$backend" "$c" "$mode" "${per_op[$backend,$mode,$c]}"
    done
    raw=${per_op[$backend,raw,$c]:-}
    if [ -n "$raw" ]; then
      for mode in backend resilient resilient-bare; do
        [ -n "${per_op[$backend,$mode,$c]:-}" ] || continue
        awk -v b="$backend" -v c="$c" -v m="$mode" -v x="${per_op[$backend,$mode,$c]}" -v r="$raw" \
          'BEGIN { printf "%-9s %5s  %s/raw = %.3f\n", b, c, m, x / r }'
      done
    fi
  done
done

if [ "$ANNOTATE" = 1 ]; then
  for f in "$OUT"/*-resilient-c*.out; do
    case "$f" in *-small.out) continue ;; esac
    echo
    echo "== $f: top functions by inclusive instructions"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '1,60p'
  done
fi
