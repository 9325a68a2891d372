#!/usr/bin/env bash
# Runs every scenario of docs/BENCHMARKS.md against Switchboard and the bare floor, each started
# fresh by the load generator (release builds, a temporary SQLite file for Switchboard).
# Usage: bash loadgen/bench.sh [full|quick] [server…]   (quick: smaller counts, one run each;
# servers: switchboard and/or floor, both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p server -p loadgen
L="$CARGO_TARGET_DIR/release/loadgen"
R=3; IDLE=10000
if [ "${1:-}" = quick ]; then R=1; IDLE=1000; fi
shift || true
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(switchboard floor)
for server in "${servers[@]}"; do
  S="$CARGO_TARGET_DIR/release/$server"
  echo "######## $server"
  for t in websocket sse long_poll; do
    "$L" --spawn "$S" idle --transport "$t" --n "$IDLE"
  done
  "$L" --spawn "$S" --repeat "$R" fanout --transport websocket --subs 1000 --rate 100 --secs 10
  "$L" --spawn "$S" --repeat "$R" fanout --transport sse --subs 1000 --rate 100 --secs 10
  "$L" --spawn "$S" --repeat "$R" fanout --transport long_poll --subs 1000 --rate 10 --secs 10
  # Saturation at rising publisher concurrency: each poster waits for its 201 before the next
  # post, so throughput at few posters is bounded by the post round trip (Little's law), at
  # many by the server's delivery cost.
  for p in 4 16 64; do
    "$L" --spawn "$S" --repeat "$R" saturate --transport websocket --subs 1000 --secs 5 --posters "$p"
    "$L" --spawn "$S" --repeat "$R" saturate --transport sse --subs 1000 --secs 5 --posters "$p"
  done
  "$L" --spawn "$S" --repeat "$R" roundtrip --via ws --n 1000
  "$L" --spawn "$S" --repeat "$R" roundtrip --via http --n 1000
  "$L" --spawn "$S" --repeat "$R" poll --kind short --concurrency 64 --secs 10
  "$L" --spawn "$S" --repeat "$R" poll --kind etag --concurrency 64 --secs 10
  "$L" --spawn "$S" --repeat "$R" poll --kind long --concurrency 64 --secs 10
  "$L" --spawn "$S" --repeat "$R" writes --senders 100 --secs 10
  if [ "$server" = switchboard ]; then "$L" --spawn "$S" --repeat "$R" storm --clients 2000; fi
done
