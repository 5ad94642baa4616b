#!/usr/bin/env bash
# Runs the own test suite of kafka-go 0.2.1, the Go client Debian 12 packages
# (golang-github-segmentio-kafka-go-dev, installed here if missing), against Weir. Its tests
# expect Kafka's test setup: a broker on localhost:9092 with node id 1 advertising
# `localhost`, and topics auto-created. Not part of `scripts/test.sh` (the suite needs port 9092
# and its read-deadline tests are timing-sensitive); tests-compat/test_go_clients.py runs the
# client itself in CI. Results are in docs/compatibility.md#kafka-gos-own-test-suite.
#
#   scripts/kafka-go-suite.sh            # the whole suite (about a minute)
#   scripts/kafka-go-suite.sh TestConn   # tests matching a `go test -run` pattern
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work="${WEIR_KGO_DIR:-$root/target/kafka-go-suite}"

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/segmentio/kafka-go ]; then
  echo "kafka-go-suite: installing golang-go and kafka-go from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq golang-go golang-github-segmentio-kafka-go-dev >/dev/null
fi
# A private GOPATH copy: `go test` must not write into the package's system directory.
rm -rf "$work" && mkdir -p "$work/gopath"
cp -r /usr/share/gocode/src "$work/gopath/src"

cargo build --release -q -p weir-broker --bin weir
"$root/target/release/weir" serve --data-dir "$work/data" --admin-listener none --node-id 1 \
  --listener 127.0.0.1:9092 --advertised-listener localhost:9092 >"$work/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && break
  sleep 0.1
done

cd "$work/gopath/src/github.com/segmentio/kafka-go"
status=0
GOPATH="$work/gopath" GO111MODULE=off GOFLAGS= go test -count=1 -v -timeout 600s \
  ${1:+-run "$1"} . >"$work/test.log" 2>&1 || status=$?
grep -E "^(--- FAIL|--- SKIP|ok|FAIL|PASS)" "$work/test.log" || true
echo "kafka-go-suite: $(grep -c '^--- PASS' "$work/test.log") tests passed," \
  "$(grep -c '^--- FAIL' "$work/test.log") failed; log: $work/test.log, broker: $work/broker.log"
exit "$status"
