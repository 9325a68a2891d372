#!/usr/bin/env bash
# The "Scale-out" figures of docs/BENCHMARKS.md: fan-out and saturation with one server without
# Redis, one server with the backplane, then 2 and 3 servers behind it, every server started
# fresh by the load generator (release builds) on a fresh database of its own.
#
# Usage: bash loadgen/bench-cluster.sh [full|quick]
# Environment:
#   REDIS_URL  default redis://127.0.0.1:6379 (each run uses a channel of its own)
#   PG         the PostgreSQL server, default postgres://postgres@127.0.0.1:5432: each run gets a
#              fresh database there (created and dropped with psql). PG= (empty): a fresh SQLite
#              file shared by the run's servers instead (one machine only).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Two builds, not one: built together, the two packages' dependency features would be unified
# and the server rebuilt differently from the one scripts/cluster.sh and xtask build.
cargo build --release -q -p server --bin switchboard
cargo build --release -q -p loadgen
L="$CARGO_TARGET_DIR/release/loadgen"
S="$CARGO_TARGET_DIR/release/switchboard"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
PG="${PG-postgres://postgres@127.0.0.1:5432}"
R=3; SUBS=1000; SECS=10
if [ "${1:-}" = quick ]; then R=1; SUBS=300; SECS=5; fi

n=0
lg() { # lg <cluster flags…> -- <scenario…>
  local db=()
  if [ -n "${PG:-}" ]; then
    n=$((n + 1))
    local name="lg_bench_$$_$n"
    psql "$PG/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $name"
    db=(--database-url "$PG/$name")
  fi
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  echo "\$ loadgen --spawn switchboard ${flags[*]} ${db[*]} --repeat $R $*"
  "$L" --spawn "$S" "${flags[@]}" "${db[@]}" --repeat "$R" "$@" || echo "(run failed)"
  if [ -n "${PG:-}" ]; then
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS lg_bench_$$_$n WITH (FORCE)"
  fi
}

for t in websocket sse; do
  echo "######## fan-out $t, $SUBS subscribers × 100 msg/s"
  lg -- fanout --transport "$t" --subs "$SUBS" --rate 100 --secs "$SECS"
  lg --redis-url "$REDIS_URL" -- fanout --transport "$t" --subs "$SUBS" --rate 100 --secs "$SECS"
  lg --servers 2 --redis-url "$REDIS_URL" -- fanout --transport "$t" --subs "$SUBS" --rate 100 --secs "$SECS"
  lg --servers 3 --redis-url "$REDIS_URL" -- fanout --transport "$t" --subs "$SUBS" --rate 100 --secs "$SECS"
done
echo "######## saturation websocket, $SUBS subscribers"
lg -- saturate --transport websocket --subs "$SUBS" --secs 5
lg --redis-url "$REDIS_URL" -- saturate --transport websocket --subs "$SUBS" --secs 5
lg --servers 2 --redis-url "$REDIS_URL" -- saturate --transport websocket --subs "$SUBS" --secs 5
lg --servers 3 --redis-url "$REDIS_URL" -- saturate --transport websocket --subs "$SUBS" --secs 5
echo "######## backplane cost per event: 12 WebSocket subscribers × 100 msg/s"
lg -- fanout --transport websocket --subs 12 --rate 100 --secs "$SECS"
lg --redis-url "$REDIS_URL" -- fanout --transport websocket --subs 12 --rate 100 --secs "$SECS"
lg --servers 2 --redis-url "$REDIS_URL" -- fanout --transport websocket --subs 12 --rate 100 --secs "$SECS"
lg --servers 3 --redis-url "$REDIS_URL" -- fanout --transport websocket --subs 12 --rate 100 --secs "$SECS"
