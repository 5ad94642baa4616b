#!/usr/bin/env bash
# Runs librdkafka's own test suite (its tests/ directory, the sources vendored in the rdkafka-sys
# crate that benches/loadgen depends on) against Weir: a single node, or three brokers with etcd
# as librdkafka's CI runs it against Kafka. Not part of `scripts/test.sh`: the whole suite takes
# 15-25 minutes on 2 cores. Results are in docs/compatibility.md#librdkafkas-own-test-suite.
#
#   scripts/librdkafka-suite.sh                 # every test that needs a broker, one node
#   scripts/librdkafka-suite.sh 0081 0103       # these tests (substring match, one run each)
#   WEIR_RDK_CLUSTER=1 scripts/librdkafka-suite.sh 0103      # three brokers (needs etcd)
#   WEIR_RDK_SASL=1 WEIR_RDK_CLUSTER=1 WEIR_RDK_FULL=1 scripts/librdkafka-suite.sh 0142 0135
#
# Every run uses the broker settings the suite assumes of Kafka's test clusters: 4 partitions per
# auto-created topic, an authorizer that allows what no ACL names (0081 creates ACLs), and with
# WEIR_RDK_SASL a SASL_PLAINTEXT listener (PLAIN, SCRAM) with connections.max.reauth.ms=10000
# (0142). The suite itself runs in quick mode (-Q; WEIR_RDK_FULL=1 runs the long subtests too,
# which 0142 needs) without its sockem and known-issue tests and with its timeouts tripled (this machine is slower than librdkafka's CI). Tests that start
# Kafka's own scripts (0052, 0077, 0109, 0115, 0119 need KAFKA_PATH) fail here by design.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work="${WEIR_RDK_DIR:-$root/target/librdkafka-suite}"
port=19600

src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$src" ]; then
  (cd benches/loadgen && cargo fetch -q)
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka | sort -V | tail -1)
fi
if [ ! -x "$work/tests/test-runner" ]; then
  echo "librdkafka-suite: building librdkafka and its tests from $src (a few minutes)"
  rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work/"
  (cd "$work" && ./configure --no-download --disable-gssapi --disable-curl >build.log 2>&1 \
    && make -j"$(nproc)" libs >>build.log 2>&1 && make -C tests -j"$(nproc)" build >>build.log 2>&1) \
    || { echo "librdkafka-suite: build failed, see $work/build.log" >&2; exit 1; }
fi
cargo build --release -q -p weir-broker --bin weir
weir="$root/target/release/weir"

run="$work/run"
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap stop EXIT

# Starts a fresh broker (or cluster) whose first client listener is 127.0.0.1:$port.
start() {
  stop
  rm -rf "$run" && mkdir -p "$run"
  local common=(--admin-listener none --default-partitions 4 --authorizer on
    --allow-everyone-if-no-acl-found true)
  local sasl=()
  if [ -n "${WEIR_RDK_SASL:-}" ]; then
    sasl=(--sasl-enabled-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 --connections-max-reauth-ms 10000)
  fi
  local n nodes=1 cluster=()
  if [ -n "${WEIR_RDK_CLUSTER:-}" ]; then
    nodes=3
    etcd --name rdk --data-dir "$run/etcd" --listen-client-urls "http://127.0.0.1:$((port + 100))" \
      --advertise-client-urls "http://127.0.0.1:$((port + 100))" \
      --listen-peer-urls "http://127.0.0.1:$((port + 101))" >"$run/etcd.log" 2>&1 &
    pids+=($!)
    sleep 2
  fi
  for n in $(seq 1 "$nodes"); do
    local client=$((port + n - 1)) internal=$((port + 10 + n - 1))
    if [ "$nodes" -gt 1 ]; then
      cluster=(--node-id "$n" --etcd "http://127.0.0.1:$((port + 100))" --default-replication-factor 3)
    fi
    local listeners=(--listener "127.0.0.1:$client")
    if [ -n "${WEIR_RDK_SASL:-}" ]; then
      listeners=(--listeners "SASL_PLAINTEXT://127.0.0.1:$client,PLAINTEXT://127.0.0.1:$internal"
        --inter-broker-listener-name PLAINTEXT)
    fi
    "$weir" serve "${listeners[@]}" --data-dir "$run/$n" "${common[@]}" "${sasl[@]}" "${cluster[@]}" \
      >"$run/broker-$n.log" 2>&1 &
    pids+=($!)
  done
  sleep 3
  if [ -n "${WEIR_RDK_SASL:-}" ]; then
    "$weir" user create alice --password alice-secret --brokers "127.0.0.1:$((port + 10))" >/dev/null
  fi
}

conf="$work/tests/weir-test.conf"
{
  echo "metadata.broker.list=127.0.0.1:$port"
  echo "test.timeout.multiplier=3"
  if [ -n "${WEIR_RDK_SASL:-}" ]; then
    printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n'
    printf 'sasl.username=alice\nsasl.password=alice-secret\n'
  fi
} >"$conf"

quick=-Q
[ -n "${WEIR_RDK_FULL:-}" ] && quick=

# Runs the tests matching $1; prints the summary (or, when the runner aborts before it, which
# test failed where) and returns the runner's status. The whole log is kept beside the data.
suite() {
  local log="$work/run-${1:-all}.log" rc=0
  (cd "$work/tests" && RDKAFKA_TEST_CONF=weir-test.conf TEST_KAFKA_VERSION=4.1.0 \
    LD_LIBRARY_PATH=../src:../src-cpp TESTS="${1:-}" ./test-runner $quick -p1 -L -K -E) \
    >"$log" 2>&1 || rc=$?
  sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^\||failed at' | grep -v -e SKIPPED -e '<MAIN>' || true
  [ "$rc" -eq 0 ] || echo "librdkafka-suite: the runner exited with $rc (log: $log)"
  return "$rc"
}

status=0
if [ $# -eq 0 ]; then
  start
  suite "" || status=1
else
  for t in "$@"; do
    start
    suite "$t" || status=1
  done
fi
exit $status
