#!/usr/bin/env bash
# The project's one test command: sets up what a fresh machine lacks, then runs
# formatting, lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1; then
  say "redis-server not found: installing it with apt-get"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server
fi
if ! command -v redis-cli >/dev/null 2>&1; then
  say "redis-cli not found (the cluster tests create clusters with it): installing redis-tools"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools
fi
if ! command -v cc >/dev/null 2>&1; then
  say "no C compiler found (resilience-core's feature lua builds the vendored Lua 5.1): installing gcc"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc libc6-dev
fi
redis-server --version

if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

say "the docs stand alone: no citation of documents outside the repository"
if git grep -n -I -E "seed §|DESIGN §|DESIGN\.md|[Ii]ssue [0-9]+|[Ii]ssue:|the issue's|\.\./shared/" -- . ':!scripts/test.sh' ':!*.lock'; then
  echo "cite no outside document: explain the point where it is made" >&2
  exit 1
fi

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

say "cargo clippy, resilience-core with default features (no durable journal)"
cargo clippy -p resilience-core --all-targets -- -D warnings

say "cargo doc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

say "cargo test (all features)"
cargo test --workspace --all-features -- --skip cluster_chaos

say "cluster chaos, each backend (prints its cluster-chaos line)"
cargo test -p backend-redis-rs -p backend-fred --all-features --test cluster cluster_chaos -- --nocapture

say "feature matrix: each Redis driver on its own"
cargo test -p memory-tiers --no-default-features --features fred
cargo test -p memory-tiers --no-default-features --features redis-rs

say "the library crates package for crates.io (examples is not published)"
cargo package --workspace --exclude examples --allow-dirty --no-verify --quiet

say "all checks passed"
