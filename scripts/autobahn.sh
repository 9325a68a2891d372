#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn test suite's fuzzing client against the real server.
#
#   scripts/autobahn.sh [--release] [--summary FILE] [--reports DIR] [CASES…]
#
# Installs `autobahntestsuite` (Python 2.7 only) into a virtualenv under
# ${XDG_CACHE_HOME:-~/.cache}/switchboard-autobahn (once; later runs reuse it), builds the server,
# starts it on a free port with a temporary database and `--ws-echo`, signs up a user, and runs the
# fuzzing client against /api/live/echo with that session's cookie and a same-origin Origin
# header. /api/live/echo is the test-only echo the suite needs: behind the same session and origin
# checks as /api/live/ws, with the same WebSocket settings and close handling. Prints the outcome
# counts; exits non-zero if any case did not pass (FAILED, or a closing handshake WRONG CODE or
# UNCLEAN). `--summary FILE` also writes the counts as Markdown; `--reports DIR` keeps the suite's
# per-case reports (HTML and JSON) there.
# CASES (e.g. `1.*` `7.5.1`) narrow the run; the default is every case except those listed in
# EXCLUDED below (see docs/AUTOBAHN.md for why).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-autobahn"
# The last release that installs on Python 2.7 with its dependencies (checked 2026-11).
AUTOBAHN_VERSION="25.10.1"

profile=debug
cargo_profile=()
summary=""
reports=""
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release; cargo_profile=(--release) ;;
    --summary) summary="$2"; shift ;;
    --reports) reports="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) cases+=("$1") ;;
  esac
  shift
done
[ ${#cases[@]} -gt 0 ] || cases=("*")

# Messages over the server's documented 64 KiB limit: the server closes with 1009 as documented,
# where these cases expect an echo (9.1.2+ and 9.2.2+: 256 KiB to 16 MiB; 9.3-9.6: 1-4 MiB).
EXCLUDED='["9.1.2", "9.1.3", "9.1.4", "9.1.5", "9.1.6",
           "9.2.2", "9.2.3", "9.2.4", "9.2.5", "9.2.6",
           "9.3.*", "9.4.*", "9.5.*", "9.6.*"]'

say() { printf '\n==> %s\n' "$*"; }

find_python2() {
  if [ -n "${PYTHON2:-}" ]; then echo "$PYTHON2"; return; fi
  # A pyenv shim answers `command -v` without being runnable: ask it to run.
  if command -v python2.7 >/dev/null 2>&1 && python2.7 -c '' >/dev/null 2>&1; then
    command -v python2.7
    return
  fi
  local root
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for p in "$root"/versions/2.7*/bin/python2.7; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  echo "Python 2.7 is missing (the Autobahn test suite needs it): install it (pyenv install 2.7.18) or set PYTHON2." >&2
  exit 1
}

if [ ! -x "$CACHE/venv/bin/wstest" ]; then
  say "installing autobahntestsuite $AUTOBAHN_VERSION into $CACHE/venv (once)"
  py2="$(find_python2)"
  mkdir -p "$CACHE"
  # virtualenv 20.22 dropped Python 2 environments; kept apart from the interpreter's packages.
  if [ ! -d "$CACHE/bootstrap/virtualenv" ]; then
    "$py2" -m pip install -q --target "$CACHE/bootstrap" 'virtualenv<20.22'
  fi
  rm -rf "$CACHE/venv"
  PYTHONPATH="$CACHE/bootstrap" "$py2" -m virtualenv -q "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q "autobahntestsuite==$AUTOBAHN_VERSION"
fi

say "building the server ($profile)"
cargo build -q -p server --bin switchboard "${cargo_profile[@]}"
bin="$CARGO_TARGET_DIR/$profile/switchboard"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
say "starting the server on $base with a temporary database"
"$bin" --addr "127.0.0.1:$port" --database-url "sqlite://$work/autobahn.db" \
  --site-root "$work/site" --ws-echo --log warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; echo "server died" >&2; exit 1; fi
  sleep 0.1
done

curl -fsS -c "$work/cookies" -H 'content-type: application/json' \
  -d '{"username":"autobahn","password":"autobahn-conformance"}' "$base/api/auth/signup" >/dev/null
cookie="$(awk '$6 == "switchboard_session" { print $6 "=" $7 }' "$work/cookies")"
[ -n "$cookie" ] || { echo "no session cookie after sign-up" >&2; exit 1; }

[ -n "$reports" ] || reports="$work/reports"
cases_json="$(printf '%s\n' "${cases[@]}" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
cat >"$work/fuzzingclient.json" <<EOF
{
  "outdir": "$reports",
  "servers": [{
    "agent": "switchboard",
    "url": "ws://127.0.0.1:$port/api/live/echo",
    "origin": "$base",
    "headers": {"Cookie": "$cookie"}
  }],
  "cases": $cases_json,
  "exclude-cases": $EXCLUDED,
  "exclude-agent-cases": {}
}
EOF

say "running the Autobahn fuzzing client (cases: ${cases[*]})"
start=$(date +%s)
(cd "$work" && "$CACHE/venv/bin/python" "$ROOT/scripts/autobahn/fuzzingclient.py" \
  --mode fuzzingclient --spec "$work/fuzzingclient.json" --webport 0) >"$work/wstest.log" 2>&1 || {
  tail -30 "$work/wstest.log"; echo "the fuzzing client failed" >&2; exit 1; }
elapsed=$(( $(date +%s) - start ))

python3 - "$reports/index.json" "$elapsed" "$summary" "$AUTOBAHN_VERSION" <<'EOF'
import collections, json, sys

index, elapsed, summary, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
results = json.load(open(index))["switchboard"]
# Outcomes that are not failures: OK, and what the suite itself calls acceptable or optional.
ACCEPTED = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"]
key = lambda c: [int(p) for p in c.split(".")]
behavior = collections.Counter(r["behavior"] for r in results.values())
closing = collections.Counter(r["behaviorClose"] for r in results.values())
bad = sorted((c for c, r in results.items()
              if r["behavior"] not in ACCEPTED or r["behaviorClose"] not in ACCEPTED), key=key)

def groups(ids):
    # A few cases by id; many by group.
    if len(ids) <= 12:
        return " ".join(sorted(ids, key=key))
    g = collections.Counter(".".join(c.split(".")[:2]) for c in ids)
    return ", ".join("%s.* (%d)" % (k, n) for k, n in sorted(g.items(), key=lambda kv: key(kv[0])))

lines = ["%d cases in %d s (autobahntestsuite %s)" % (len(results), elapsed, version), ""]
lines.append("| outcome | cases (behaviour) | cases (closing handshake) |")
lines.append("|---|---|---|")
others = sorted((set(behavior) | set(closing)) - set(ACCEPTED) - {"FAILED"})
for outcome in ACCEPTED + others + ["FAILED"]:
    lines.append("| %s | %d | %d |" % (outcome, behavior.get(outcome, 0), closing.get(outcome, 0)))
for outcome in ACCEPTED[1:] + others + ["FAILED"]:
    ids = [c for c, r in results.items() if outcome in (r["behavior"], r["behaviorClose"])]
    if ids:
        lines.append("")
        lines.append("%s: %s" % (outcome, groups(ids)))
if bad:
    lines.append("")
    lines.append("not passed: %d cases (first: %s)" % (len(bad), " ".join(bad[:20])))
text = "\n".join(lines)
print(text)
if summary:
    open(summary, "w").write(text + "\n")
sys.exit(1 if bad else 0)
EOF
