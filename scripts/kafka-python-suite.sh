#!/usr/bin/env bash
# Runs kafka-python's own integration tests (test/integration of a checkout of
# github.com/dpkp/kafka-python given as the first argument) against one Weir broker shaped like the
# Kafka the suite's fixture starts (servers/resources/default/kafka.properties): 4 partitions for
# new topics (the external fixture's default), 2 partitions of __consumer_offsets, no initial
# rebalance delay, group.min.session.timeout.ms of 1000 (test_group's members ask for 3 s), the
# authorizer on but open where no ACL applies. KAFKA_URI points the suite at
# an existing broker (the SASL tests then skip themselves; the SSL tests still start a Kafka of
# their own, so they are deselected); KAFKA_VERSION, 4.1.0 unless set, is the broker version the
# clients are configured with and the tests gate on. The checkout itself is installed into a
# virtualenv with its requirements-dev.txt. Not part of `scripts/test.sh`: GitHub is not
# reachable from CI.
#
#   scripts/kafka-python-suite.sh ~/src/kafka-python
#   scripts/kafka-python-suite.sh ~/src/kafka-python test/integration/test_admin_integration.py -k acls
#   KAFKA_VERSION=4.0.0 scripts/kafka-python-suite.sh ~/src/kafka-python
#
# WEIR_KP_PORT (default 9092) is the broker's port, which must be free; WEIR_BIN runs that weir
# binary instead of building one. The broker's log and the virtualenv are kept in
# target/kafka-python-suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite="${1:?usage: scripts/kafka-python-suite.sh CHECKOUT [PYTEST_ARGS...]}"
suite=$(cd "$suite" && pwd)
shift
run="$root/target/kafka-python-suite"
port="${WEIR_KP_PORT:-9092}"

if [ -n "${WEIR_BIN:-}" ]; then
  weir="$WEIR_BIN"
else
  cargo build --release -q -p weir-broker --bin weir
  weir="$root/target/release/weir"
fi
mkdir -p "$run"
if [ ! -x "$run/venv/bin/python" ]; then
  python3 -m venv "$run/venv"
  "$run/venv/bin/pip" install -q -r "$suite/requirements-dev.txt"
  "$run/venv/bin/pip" install -q -e "$suite"
fi

rm -rf "$run/data"
"$weir" serve --data-dir "$run/data" --listener "127.0.0.1:$port" --admin-listener none \
  --default-partitions 4 --offsets-topic-num-partitions 2 --group-initial-rebalance-delay-ms 0 \
  --group-min-session-timeout-ms 1000 \
  --authorizer on --allow-everyone-if-no-acl-found true >"$run/weir.log" 2>&1 &
weir_pid=$!
trap 'kill $weir_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(test/integration)
# The fixture wants a Kafka distribution's directory even for an external broker; an empty one does.
mkdir -p "$run/no-kafka"
cd "$suite" && KAFKA_URI="PLAINTEXT://127.0.0.1:$port" KAFKA_VERSION="${KAFKA_VERSION:-4.1.0}" \
  KAFKA_ROOT="$run/no-kafka" \
  "$run/venv/bin/python" -m pytest -p no:cacheprovider -q --timeout 120 \
  --deselect test/integration/test_ssl_integration.py "${args[@]}"
