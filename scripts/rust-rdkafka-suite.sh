#!/usr/bin/env bash
# Runs rust-rdkafka's integration tests (a checkout of github.com/fede1024/rust-rdkafka given as
# the first argument) against one Weir broker shaped like the suite's docker-compose Kafka: 3
# partitions for new topics, on localhost:9092. A checkout without its librdkafka submodule gets
# the sources of the rdkafka-sys crate in cargo's registry (the one Weir's load generator builds).
# Not part of `scripts/test.sh`: GitHub is not reachable from CI. Results are in
# docs/compatibility.md#rust-rdkafkas-own-test-suite.
#
#   scripts/rust-rdkafka-suite.sh ~/src/rust-rdkafka
#   scripts/rust-rdkafka-suite.sh ~/src/rust-rdkafka --test test_admin
#
# Port 9092 must be free. The broker's log and the suite's build are kept in target/rust-rdkafka-suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite="${1:?usage: scripts/rust-rdkafka-suite.sh CHECKOUT [CARGO_TEST_ARGS...]}"
suite=$(cd "$suite" && pwd)
shift
run="$root/target/rust-rdkafka-suite"

cargo build --release -q -p weir-broker --bin weir
mkdir -p "$run"
if [ ! -f "$suite/rdkafka-sys/librdkafka/configure" ]; then
  sources=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka | tail -1)
  rm -rf "$suite/rdkafka-sys/librdkafka"
  cp -r "$sources" "$suite/rdkafka-sys/librdkafka"
fi

rm -rf "$run/data"
"$root/target/release/weir" serve --data-dir "$run/data" --admin-listener none \
  --default-partitions 3 >"$run/weir.log" 2>&1 &
weir_pid=$!
trap 'kill $weir_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--tests --no-fail-fast)
cd "$suite" && CARGO_TARGET_DIR="$run/target" RUST_LOG=off cargo test "${args[@]}"
