#!/usr/bin/env bash
# The whole test suite: Rust unit, property and integration tests, then the client compatibility suite
# (real Kafka clients against the built `weir` binary). Installs what it needs by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase prints when it starts (seconds since the start), so a slow CI run shows where its
# time went.
phase() { echo "== $1 (at ${SECONDS} s)"; }

# The release profile keeps line tables (`debug = 1`) for profiling; the tests do not need them,
# and without them the many release test binaries compile and link faster.
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}"

phase "cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

phase "test dependencies"
# etcd for the cluster tests (a real etcd, from Debian: etcd-server).
if ! command -v etcd >/dev/null 2>&1; then
  echo "test.sh: installing etcd-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq etcd-server >/dev/null
fi

# One release build of the whole workspace serves both the Rust tests and the client suite: the
# `weir` binary the client suite runs is the one `cargo test` builds for the broker's integration
# tests. (A separate `cargo build -p weir-broker --bin weir` resolves features for the broker
# alone; the workspace's test build unifies them with the dev-dependencies', so it compiled
# kafka-protocol, the three Weir libraries and most other dependencies a second time.)
phase "cargo build (tests and the weir binary)"
cargo test --workspace --release --no-run
phase "cargo test"
cargo test --workspace --release

if [ -d tests-compat ] && ls tests-compat/test_*.py >/dev/null 2>&1; then
  phase "client compatibility suite: install"
  ./tests-compat/install.sh
  phase "client compatibility suite"
  # Two files at a time by default (pytest-xdist; the tests mostly wait, so about half the wall
  # time on two cores); WEIR_TEST_WORKERS=1 runs them one after another. (A stall once seen in a
  # parallel run was a share consumer polling forever against a cluster that answered its
  # heartbeats COORDINATOR_NOT_AVAILABLE; that was a bug, fixed.)
  parallel=()
  if [ "${WEIR_TEST_WORKERS:-2}" -gt 1 ]; then
    parallel=(-n "${WEIR_TEST_WORKERS:-2}" --dist loadfile)
  fi
  # --durations: the slowest tests, for keeping the suite within its time budget.
  WEIR_BIN="$PWD/target/release/weir" .venv/bin/python -m pytest -q tests-compat "${parallel[@]}" \
    --durations=15
fi
phase "done"
