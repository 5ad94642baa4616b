#!/usr/bin/env bash
# Runs KafkaJS's own test suite (jest, from a checkout of github.com/tulios/kafkajs given as the
# first argument) against a three-broker Weir cluster shaped like the one KafkaJS's CI starts with
# docker compose: node ids 0-2, PLAINTEXT on 9092/9095/9098, SSL on 9093/9096/9099 and SASL_SSL on
# 9094/9097/9100 (advertised as localhost), 2 partitions and replication factor 2 for new topics,
# the authorizer on but open where no ACL applies, and the users the suite logs in as (PLAIN
# test/testtest, bob, alice; SCRAM testscram with one password per mechanism). Not part of
# `scripts/test.sh`: GitHub is not reachable from CI and the suite takes 10-15 minutes. Results are
# in docs/compatibility.md#kafkajss-own-test-suite.
#
#   scripts/kafkajs-suite.sh ~/src/kafkajs                  # producer, broker, admin, consumer
#   scripts/kafkajs-suite.sh ~/src/kafkajs 'src/admin/.*'   # one jest --testPathPattern
#   WEIR_KJS_NODES=1 scripts/kafkajs-suite.sh ~/src/kafkajs  # one node (no etcd): node 0 only
#
# Needs etcd, openssl, node and npm (npm installs the checkout's dependencies on the first run).
# The ports above must be free. The logs are kept in target/kafkajs-suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite="${1:?usage: scripts/kafkajs-suite.sh KAFKAJS_CHECKOUT [TEST_PATH_PATTERN]}"
suite=$(cd "$suite" && pwd)
run="$root/target/kafkajs-suite"

cargo build --release -q -p weir-broker --bin weir
weir="$root/target/release/weir"
[ -d "$suite/node_modules" ] || (cd "$suite" && npm install --no-audit --no-fund --loglevel=error)

pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT

rm -rf "$run" && mkdir -p "$run"
# The suite connects with rejectUnauthorized=false, so a certificate of our own does.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$run/key.pem" -out "$run/cert.pem" \
  2>/dev/null
nodes="${WEIR_KJS_NODES:-3}"
cluster=()
if [ "$nodes" != 1 ]; then
etcd --data-dir "$run/etcd" --listen-client-urls http://127.0.0.1:23790 \
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
  --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster default=http://127.0.0.1:23800 >"$run/etcd.log" 2>&1 &
pids+=($!)
cluster=(--etcd http://127.0.0.1:23790)
fi
for node in $(seq 0 $((nodes - 1))); do
  port=$((9092 + node * 3))
  data="$run/node$node"
  "$weir" user create test --password testtest --data-dir "$data" >/dev/null
  "$weir" user create bob --password bobbob --data-dir "$data" >/dev/null
  "$weir" user create alice --password alicealice --data-dir "$data" >/dev/null
  "$weir" user create testscram --mechanism SCRAM-SHA-256 --password 'testtestscram=256' \
    --data-dir "$data" >/dev/null
  "$weir" user create testscram --mechanism SCRAM-SHA-512 --password 'testtestscram=512' \
    --data-dir "$data" >/dev/null
  "$weir" serve --node-id "$node" "${cluster[@]}" --data-dir "$data" \
    --listeners "PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$((port + 1)),SASL_SSL://127.0.0.1:$((port + 2))" \
    --advertised-listeners "PLAINTEXT://localhost:$port,SSL://localhost:$((port + 1)),SASL_SSL://localhost:$((port + 2))" \
    --ssl-certificate-file "$run/cert.pem" --ssl-key-file "$run/key.pem" \
    --sasl-enabled-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
    --authorizer on --allow-everyone-if-no-acl-found true \
    --admin-listener none --group-initial-rebalance-delay-ms 0 \
    --default-partitions 2 --default-replication-factor 2 >"$run/node$node.log" 2>&1 &
  pids+=($!)
done
# Until every broker has registered (each lists the others in Metadata).
for _ in $(seq 150); do
  [ "$("$weir" cluster nodes --brokers 127.0.0.1:9092 --output json 2>/dev/null | grep -o '"node_id"' | wc -l)" = "$nodes" ] && break
  sleep 0.2
done

patterns=("${2:-}")
[ -n "${patterns[0]}" ] || patterns=('src/producer/.*' 'src/broker/.*' 'src/admin/.*' 'src/consumer/.*.spec.js')
status=0
for pattern in "${patterns[@]}"; do
  echo "kafkajs-suite: jest --testPathPattern '$pattern'"
  (cd "$suite" && KAFKA_VERSION=2.4 KAFKAJS_DEBUG_PROTOCOL_BUFFERS=1 npx jest --ci --forceExit \
    --maxWorkers=2 --testPathPattern "$pattern") >"$run/jest-$(echo "$pattern" | tr -c 'a-z' _).log" 2>&1 \
    || status=1
  grep -hE '^Tests:' "$run"/jest-"$(echo "$pattern" | tr -c 'a-z' _)".log || true
done
exit $status
