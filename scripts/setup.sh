# Shared set-up for run.sh and test.sh (sourced, not run). Installs what is missing, idempotently:
# the wasm target and cargo's fmt/clippy components.
#
# Builds go to the clone's own target/ unless CARGO_TARGET_DIR says otherwise. One target dir
# shared by two clones is a trap: cargo re-links `target/debug/<bin>` only when it rebuilds, so a
# clone whose build is already fresh can run the binary another clone left there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Two cores: one cargo at a time, all of it.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-off build (CI, a fresh clone) gains nothing from incremental artefacts, and they are a
# large share of the target dir's disk use; local edit-compile loops keep cargo's default.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

say() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (stable 1.95 or newer) with rustup first." >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  for comp in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$comp"; then
      say "installing $comp"
      rustup component add "$comp"
    fi
  done
fi
