#!/usr/bin/env bash
# Starts a local Switchboard cluster: N servers (default 3) sharing one database and the Redis
# backplane, behind nginx, with the nginx config generated from deploy/nginx/switchboard.conf.
# Prints the URL; Ctrl-C (or any exit) stops everything it started. See docs/SCALING.md.
#
#   scripts/cluster.sh                  # 3 servers, release build, http://127.0.0.1:8080
#   scripts/cluster.sh --servers 2 --port 8081 --dev
#   scripts/cluster.sh -- --long-poll-secs 10     # extra arguments go to every server
#
# Environment:
#   DATABASE_URL    postgres://USER@HOST:PORT/DB (created if missing), default
#                   postgres://postgres@127.0.0.1:5432/switchboard_cluster; or sqlite://FILE (one
#                   SQLite file shared by the servers, WAL: one machine only, for development),
#                   e.g. DATABASE_URL=sqlite://data/cluster/switchboard.db
#   REDIS_URL       default redis://127.0.0.1:6379
#   CLUSTER_CHANNEL the backplane's pub/sub channel; default switchboard-local-<port>
#   BASE_PORT       the servers listen on 127.0.0.1:BASE_PORT+1 … +N; default 4100
#
# Installs nginx from Debian's packages when it is missing (needs root). Safe to run again: the
# database and nginx are reused, the run directory (data/cluster/run) is recreated. The servers
# share one data directory (data/cluster/files: exports), so a result downloads from any of them.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

servers=3
port=8080
profile=(--release)
bin_dir=release
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dev) profile=(); bin_dir=debug; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$servers" in ''|*[!0-9]*) echo "--servers takes a number" >&2; exit 2 ;; esac
[ "$servers" -ge 1 ] || { echo "--servers must be at least 1" >&2; exit 2; }

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/switchboard_cluster}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
CLUSTER_CHANNEL="${CLUSTER_CHANNEL:-switchboard-local-$port}"
BASE_PORT="${BASE_PORT:-4100}"
RUN="$ROOT/data/cluster/run"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- nginx ---------------------------------------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nginx is missing: run 'sudo apt-get install -y nginx-light' (or nginx) first." >&2
    exit 1
  fi
  say "installing nginx (Debian package nginx-light)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y nginx-light || { apt-get update && apt-get install -y nginx-light; } \
    || apt-get install -y nginx
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# --- free ports, Redis ---------------------------------------------------------------------
for p in "$port" $(seq $((BASE_PORT + 1)) $((BASE_PORT + servers))); do
  if port_busy "$p"; then
    echo "127.0.0.1:$p is in use (another cluster.sh still running?): stop it or pick --port / BASE_PORT." >&2
    exit 1
  fi
done
redis_hostport="${REDIS_URL#redis://}"; redis_hostport="${redis_hostport##*@}"; redis_hostport="${redis_hostport%%/*}"
if ! (exec 3<>"/dev/tcp/${redis_hostport%%:*}/${redis_hostport##*:}") 2>/dev/null; then
  echo "Redis is not reachable at $REDIS_URL (set REDIS_URL)." >&2
  exit 1
fi

# --- database ------------------------------------------------------------------------------
case "$DATABASE_URL" in
  sqlite://*)
    db_file="${DATABASE_URL#sqlite://}"
    mkdir -p "$(dirname "$db_file")"
    say "database: SQLite file $db_file, shared by the $servers servers (WAL)"
    ;;
  postgres://*|postgresql://*)
    db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
    db_server="${DATABASE_URL%/*}"
    case "$db_name" in ''|*[!a-zA-Z0-9_]*) echo "database name '$db_name': letters, digits and _ only" >&2; exit 1 ;; esac
    command -v psql >/dev/null 2>&1 || { echo "psql is missing (apt-get install -y postgresql-client)" >&2; exit 1; }
    if ! exists="$(psql "$db_server/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db_name'")"; then
      echo "PostgreSQL at $db_server is not usable (above); or run on one SQLite file:" >&2
      echo "  DATABASE_URL=sqlite://data/cluster/switchboard.db $0" >&2
      exit 1
    fi
    if [ "$exists" != 1 ]; then
      say "creating PostgreSQL database $db_name"
      psql "$db_server/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $db_name"
    fi
    say "database: PostgreSQL $DATABASE_URL"
    ;;
  *) echo "DATABASE_URL must start with sqlite:// or postgres://" >&2; exit 1 ;;
esac

# --- build ---------------------------------------------------------------------------------
say "building site and server (${profile[*]:-debug}; target dir: $CARGO_TARGET_DIR)"
cargo run -q -p xtask -- build "${profile[@]}"
BIN="$CARGO_TARGET_DIR/$bin_dir/switchboard"

# --- run -----------------------------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN/tmp"
pids=()
nginx_pid=""
stop() {
  trap - EXIT INT TERM
  say "stopping the cluster"
  if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

nodes=()
for i in $(seq 1 "$servers"); do
  p=$((BASE_PORT + i))
  node="node$i"
  nodes+=("$node 127.0.0.1:$p")
  # Behind nginx every client's TCP peer is nginx: the per-IP limits move to nginx (see the
  # config), the per-user ones stay here.
  "$BIN" --addr "127.0.0.1:$p" --node "$node" \
    --database-url "$DATABASE_URL" --redis-url "$REDIS_URL" --cluster-channel "$CLUSTER_CHANNEL" \
    --site-root "$ROOT/target/site" --data-dir "$ROOT/data/cluster/files" \
    --login-per-ip-per-minute 100000 --signup-per-ip-per-minute 0 \
    "${extra[@]}" >"$RUN/$node.log" 2>&1 &
  pids+=($!)
  # The first server runs the migrations; the others start once it is up.
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$p/healthz" 2>/dev/null; then break; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "server $node exited; its log ($RUN/$node.log):" >&2
      tail -20 "$RUN/$node.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$p/healthz" || { echo "$node did not become healthy" >&2; exit 1; }
done

# nginx.conf: the example, with this cluster's servers and port, wrapped for a run without root
# paths (pid, logs and temp files under $RUN).
upstream_lines=""
for i in $(seq 1 "$servers"); do
  upstream_lines+="    server 127.0.0.1:$((BASE_PORT + i)) max_fails=3 fail_timeout=5s;\n"
done
awk -v ups="$upstream_lines" -v port="$port" '
  /^[[:space:]]*server 127\.0\.0\.1:41[0-9][0-9]/ { if (!done) { printf "%s", ups; done = 1 } next }
  /^[[:space:]]*listen 8080;/ { print "    listen 127.0.0.1:" port ";"; next }
  { print }
' "$ROOT/deploy/nginx/switchboard.conf" >"$RUN/switchboard.conf"
{
  echo "daemon off;"
  echo "worker_processes 1;"
  # As root, nginx would switch its workers to 'nobody', who cannot write $RUN.
  if [ "$(id -u)" = 0 ]; then echo "user root;"; fi
  echo "pid $RUN/nginx.pid;"
  echo "error_log $RUN/nginx-error.log warn;"
  echo "events { worker_connections 4096; }"
  echo "http {"
  # Which server answered each request: upstream=… in the access log.
  echo "  log_format switchboard_upstream '\$remote_addr [\$time_local] \"\$request\" \$status upstream=\$upstream_addr rt=\$request_time';"
  echo "  access_log $RUN/nginx-access.log switchboard_upstream;"
  for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $RUN/tmp/$t;"; done
  echo "  include $RUN/switchboard.conf;"
  echo "}"
} >"$RUN/nginx.conf"
"$NGINX" -t -q -e "$RUN/nginx-error.log" -p "$RUN" -c "$RUN/nginx.conf"
"$NGINX" -e "$RUN/nginx-error.log" -p "$RUN" -c "$RUN/nginx.conf" &
nginx_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then break; fi
  kill -0 "$nginx_pid" 2>/dev/null || { echo "nginx exited:" >&2; tail -5 "$RUN/nginx-error.log" >&2; exit 1; }
  sleep 0.1
done

say "Switchboard cluster up: http://127.0.0.1:$port"
printf '    %s\n' "${nodes[@]}"
echo "    database $DATABASE_URL · backplane $REDIS_URL channel $CLUSTER_CHANNEL"
echo "    logs and nginx.conf in $RUN · Ctrl-C stops everything"

# Run until Ctrl-C or until any server or nginx exits.
wait -n "${pids[@]}" "$nginx_pid" || true
echo "a process of the cluster exited; stopping the rest" >&2
