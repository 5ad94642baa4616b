#!/usr/bin/env bash
# Runs the integration tests of confluent-kafka-python (a checkout of
# github.com/confluentinc/confluent-kafka-python given as the first argument) against one Weir broker
# shaped like the suite's own test cluster: 3 partitions for new topics, share record lock durations
# of 1 s, the authorizer on but open where no ACL applies. The suite's BROKERS variable points it at
# an existing cluster; the released confluent-kafka wheel pinned in tests-compat/requirements.txt
# is the client. Not part of `scripts/test.sh`: GitHub is not reachable from CI. Results are in
# docs/compatibility.md#confluent-kafka-pythons-own-integration-tests.
#
#   scripts/confluent-python-suite.sh ~/src/confluent-kafka-python
#   scripts/confluent-python-suite.sh ~/src/confluent-kafka-python tests/integration/share_consumer
#   TEST_CONSUMER_GROUP_PROTOCOL=consumer scripts/confluent-python-suite.sh ~/src/confluent-kafka-python
#
# Port 9092 must be free. The broker's log and a virtualenv are kept in target/confluent-python-suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite="${1:?usage: scripts/confluent-python-suite.sh CHECKOUT [PYTEST_PATHS...]}"
suite=$(cd "$suite" && pwd)
shift
run="$root/target/confluent-python-suite"

cargo build --release -q -p weir-broker --bin weir
mkdir -p "$run"
if [ ! -x "$run/venv/bin/python" ]; then
  python3 -m venv "$run/venv"
  client=$(grep -E '^confluent-kafka==' tests-compat/requirements.txt)
  "$run/venv/bin/pip" install -q "${client/confluent-kafka/confluent-kafka[schemaregistry,avro,json,protobuf]}" \
    trivup pytest pytest-timeout requests-mock respx pytest-asyncio async-timeout 'pluggy<1.6.0'
fi

rm -rf "$run/data"
"$root/target/release/weir" serve --data-dir "$run/data" --admin-listener none \
  --default-partitions 3 --group-share-record-lock-duration-ms 1000 \
  --group-share-min-record-lock-duration-ms 1000 \
  --authorizer on --allow-everyone-if-no-acl-found true >"$run/weir.log" 2>&1 &
weir_pid=$!
trap 'kill $weir_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT

paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(tests/integration/admin tests/integration/producer
  tests/integration/consumer tests/integration/integration_test.py tests/integration/share_consumer)
# The SASL test starts a Kafka of its own, the Schema Registry tests need a registry.
cd "$suite" && BROKERS=127.0.0.1:9092 "$run/venv/bin/python" -m pytest -p no:cacheprovider -q \
  --timeout 300 "${paths[@]}" --deselect tests/integration/admin/test_describe_operations.py \
  -k 'not schema_registry'
