#!/usr/bin/env bash
# Search and history at scale (docs/BENCHMARKS.md, issue 22): seeds a database with MESSAGES
# messages (default 1,000,000) in 200 rooms by 2,000 people, starts the release server on it,
# and measures search (a common word, a word of rank 1000, a rare one, a prefix), the newest
# history page and `around=` pages as `seed0` with loadgen. Prints the seed's time and the
# database's size. SQLite by default (a file in a fresh temporary directory); for PostgreSQL
# set DATABASE_URL to an empty database, e.g.
#   psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE search_bench'
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/search_bench scripts/search-bench.sh
#
#   cargo build --release -p server -p loadgen && scripts/search-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/switchboard"
loadgen="$target/release/loadgen"
[ -x "$bin" ] && [ -x "$loadgen" ] || { echo "build first: cargo build --release -p server -p loadgen" >&2; exit 2; }
messages="${MESSAGES:-1000000}"
n="${N:-200}"
work="$(mktemp -d)"
url="${DATABASE_URL:-sqlite://$work/search.db}"
port="${PORT:-4191}"
trap 'kill ${pid:-} 2>/dev/null; rm -rf "$work"' EXIT

echo "seeding $messages messages into $url"
start=$(date +%s.%N)
"$bin" --database-url "$url" --data-dir "$work" seed --messages "$messages" --rooms 200 --users 2000
echo "seed took $(echo "$(date +%s.%N) - $start" | bc) s"
# The seed ends with ANALYZE: without fresh statistics PostgreSQL's planner takes a rare word
# for a common one (p50 415 ms for a rare word, against 11 ms after ANALYZE).

"$bin" --addr "127.0.0.1:$port" --database-url "$url" --data-dir "$work" --log warn \
  >"$work/server.log" 2>&1 &
pid=$!
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.1; done
"$loadgen" --addr "127.0.0.1:$port" search --n "$n"

case "$url" in
  sqlite://*)
    db="${url#sqlite://}"
    echo "database size: $(du -cb "$db"* | tail -1 | cut -f1) bytes ($(ls "$db"*))";;
  postgres://*)
    echo "database size: $(psql "$url" -Atc 'SELECT pg_database_size(current_database())') bytes";;
esac
