#!/usr/bin/env bash
# Upload throughput and the server's memory during 10 MiB uploads (docs/BENCHMARKS.md).
# Starts the release server on a fresh SQLite file (or DATABASE_URL=postgres://…/db, which must
# exist), signs up one user, uploads a 10 MiB file RUNS times (default 10) with curl, downloads
# it once, and prints MB/s per upload, the median, and the server's VmRSS/VmHWM (peak resident
# memory) before and after.
#
#   nice -n 15 cargo build --release -p server
#   scripts/upload-bench.sh                      # SQLite
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/upload_bench scripts/upload-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${RUNS:-10}"
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/switchboard}"
[ -x "$bin" ] || { echo "build first: cargo build --release -p server" >&2; exit 2; }
work="$(mktemp -d)"
port="${PORT:-4190}"
url="${DATABASE_URL:-sqlite://$work/bench.db}"
"$bin" --addr "127.0.0.1:$port" --database-url "$url" --data-dir "$work" \
  --uploads-per-user-per-minute 0 --upload-bytes-per-user-per-day 0 \
  --signup-per-ip-per-minute 0 >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
until curl -fsS "$base/healthz" >/dev/null 2>&1; do sleep 0.1; done
mem() { grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; }
echo "server memory at start: $(mem)"
jar="$work/cookies"
user="bench$RANDOM"
curl -fsS -c "$jar" -H "Origin: $base" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"correct horse battery\"}" "$base/api/auth/signup" >/dev/null
head -c $((10 * 1024 * 1024)) /dev/urandom >"$work/file.bin"
rates=()
for i in $(seq 1 "$runs"); do
  out=$(curl -sS -b "$jar" -H "Origin: $base" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$work/file.bin" -o "$work/up.json" -w '%{http_code} %{time_total}' \
    "$base/api/uploads?name=file$i.bin")
  code=${out% *}; secs=${out#* }
  [ "$code" = 201 ] || { echo "upload $i: HTTP $code $(cat "$work/up.json")" >&2; exit 1; }
  rate=$(awk -v s="$secs" 'BEGIN { printf "%.1f", 10.48576 / s }')
  rates+=("$rate")
  echo "upload $i: ${secs}s = $rate MB/s; server $(mem)"
done
id=$(sed -E 's/.*"id":"([^"]+)".*/\1/' "$work/up.json")
down=$(curl -sS -b "$jar" -o "$work/down.bin" -w '%{time_total}' "$base/api/uploads/$id")
cmp -s "$work/file.bin" "$work/down.bin" || { echo "download differs" >&2; exit 1; }
echo "download: ${down}s = $(awk -v s="$down" 'BEGIN { printf "%.1f", 10.48576 / s }') MB/s"
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median upload: $median MB/s over $runs uploads of 10 MiB"
echo "server memory at end: $(mem)"
