#!/usr/bin/env bash
# The whole test suite: formatting, clippy (warnings denied, server and wasm builds), unit and
# integration tests, then the end-to-end browser tests against the real server in Debian's
# headless Chromium. Installs what is missing (wasm target, Chromium when root, npm packages).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

LOG_DIR="$(mktemp -d)"
trap 'rm -rf "$LOG_DIR"' EXIT

say "rustfmt"
cargo fmt --all -- --check

say "clippy (server side)"
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
say "clippy (browser side, wasm32)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

say "unit and integration tests"
# The multi-server tests (server/tests/it/cluster.rs) need PostgreSQL and a redis-server binary
# (they start a Redis of their own); without them they skip, and this says why.
cluster_skip=""
if ! command -v redis-server >/dev/null 2>&1; then
  cluster_skip="redis-server is not installed"
elif ! command -v psql >/dev/null 2>&1; then
  cluster_skip="psql is not installed"
elif ! psql "${SWITCHBOARD_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}/test" -qtAc 'select 1' >/dev/null 2>&1; then
  cluster_skip="PostgreSQL does not answer"
fi
[ -n "$cluster_skip" ] && echo "SKIPPED: multi-server tests — $cluster_skip"
cargo test --workspace --exclude frontend 2>&1 | tee "$LOG_DIR/cargo-test.log"

# The server's tests again with every server on PostgreSQL (each test server gets a database
# `sbt_<random>` of its own), plus the PostgreSQL store's own tests (ignored without it).
say "server tests on PostgreSQL"
PG_URL="${SWITCHBOARD_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
PG_SHOWN="postgres://${PG_URL#*@}" # without user and password
pg_skip=""
if ! command -v psql >/dev/null 2>&1; then
  pg_skip="psql is not installed (needed to check the server and drop test databases)"
elif ! psql "$PG_URL/test" -qtAc 'select 1' >/dev/null 2>"$LOG_DIR/pg-check.log"; then
  pg_skip="cannot connect to $PG_SHOWN/test: $(head -1 "$LOG_DIR/pg-check.log")"
fi
drop_test_databases() {
  psql "$PG_URL/test" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'sbt\_%'" |
    while read -r db; do
      [ -n "$db" ] && psql "$PG_URL/test" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
    done
}
if [ -z "$pg_skip" ]; then
  drop_test_databases # left over from an earlier run that stopped halfway
  SWITCHBOARD_TEST_POSTGRES="$PG_URL" cargo test -p server -- --include-ignored 2>&1 |
    tee "$LOG_DIR/cargo-test-pg.log"
  drop_test_databases
else
  echo "SKIPPED: PostgreSQL suite — $pg_skip"
  : >"$LOG_DIR/cargo-test-pg.log"
fi

say "building the site and server for the browser tests"
cargo run -q -p xtask -- build

say "browser tests"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing. Install it (as root: apt-get install -y chromium) or set CHROMIUM_PATH." >&2
    exit 1
  fi
fi
(cd end2end && npm ci --no-audit --no-fund --loglevel=error)

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
db_dir="$LOG_DIR/db"
mkdir -p "$db_dir"
"$CARGO_TARGET_DIR/debug/switchboard" --addr "127.0.0.1:$port" \
  --database-url "sqlite://$db_dir/e2e.db" --log warn >"$LOG_DIR/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$LOG_DIR"' EXIT
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server_pid 2>/dev/null; then cat "$LOG_DIR/server.log"; echo "server died" >&2; exit 1; fi
  sleep 0.1
done
set +e
# SWITCHBOARD_BIN: the outage tests start, stop and restart servers of their own from it.
(cd end2end && SWITCHBOARD_URL="http://127.0.0.1:$port" CHROMIUM_PATH="$CHROMIUM" \
  SWITCHBOARD_BIN="$CARGO_TARGET_DIR/debug/switchboard" npx playwright test) 2>&1 | tee "$LOG_DIR/e2e.log"
e2e_status=${PIPESTATUS[0]}
set -e
if [ "$e2e_status" != 0 ]; then
  echo "--- server log ---"; tail -50 "$LOG_DIR/server.log"
  exit "$e2e_status"
fi

rust_passed=$(grep -o '[0-9]* passed' "$LOG_DIR/cargo-test.log" | awk '{s+=$1} END {print s+0}')
rust_failed=$(grep -o '[0-9]* failed' "$LOG_DIR/cargo-test.log" | awk '{s+=$1} END {print s+0}')
e2e_passed=$(grep -oE '^ *[0-9]+ passed' "$LOG_DIR/e2e.log" | awk '{s+=$1} END {print s+0}')
# (An empty log when skipped: grep finds nothing, which must not end the script.)
pg_passed=$( (grep -o '[0-9]* passed' "$LOG_DIR/cargo-test-pg.log" || true) | awk '{s+=$1} END {print s+0}')
pg_failed=$( (grep -o '[0-9]* failed' "$LOG_DIR/cargo-test-pg.log" || true) | awk '{s+=$1} END {print s+0}')
echo
echo "rust: $rust_passed passed, $rust_failed failed"
if [ -z "$pg_skip" ]; then
  echo "rust on PostgreSQL: $pg_passed passed, $pg_failed failed"
else
  echo "rust on PostgreSQL: SKIPPED — $pg_skip"
fi
echo "browser: $e2e_passed passed, 0 failed"
echo "total: $((rust_passed + pg_passed + e2e_passed)) passed, $((rust_failed + pg_failed)) failed"
if [ -n "$cluster_skip" ]; then echo "multi-server tests: SKIPPED — $cluster_skip"; fi
