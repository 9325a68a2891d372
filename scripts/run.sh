#!/usr/bin/env bash
# Builds Switchboard (release: optimised server and size-optimised wasm) and serves it on
# 127.0.0.1:3000 with an embedded SQLite file (./data/switchboard.db, created if missing).
# Extra arguments go to the server, e.g. `scripts/run.sh --addr 127.0.0.1:8080`;
# `scripts/run.sh --dev …` builds the debug profile instead (faster to build, slower to run).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

profile=(--release)
if [ "${1:-}" = "--dev" ]; then
  profile=()
  shift
fi
say "building and starting Switchboard (target dir: $CARGO_TARGET_DIR)"
exec cargo run -q -p xtask -- run "${profile[@]}" -- "$@"
