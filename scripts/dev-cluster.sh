#!/usr/bin/env bash
# A Weir cluster on this machine to try things with: one etcd and three brokers.
#
#   scripts/dev-cluster.sh            # start (Ctrl-C stops everything)
#   WEIR_DEV_BROKERS=5 scripts/dev-cluster.sh
#
# Brokers 1..N listen for Kafka clients on 127.0.0.1:9092, :9093, ... and serve the admin API
# and /metrics on 127.0.0.1:9644, :9645, ... Data and logs go to ./weir-dev-cluster/ (kept
# between runs: delete it to start afresh). etcd listens on 127.0.0.1:2379.
set -euo pipefail
cd "$(dirname "$0")/.."

brokers="${WEIR_DEV_BROKERS:-3}"
dir="${WEIR_DEV_DIR:-$PWD/weir-dev-cluster}"
etcd_port="${WEIR_DEV_ETCD_PORT:-2379}"

if ! command -v etcd >/dev/null 2>&1; then
  echo "dev-cluster: etcd is not installed (Debian/Ubuntu: apt-get install etcd-server)" >&2
  exit 1
fi
if [ ! -x target/release/weir ]; then
  echo "dev-cluster: building weir"
  cargo build --release -p weir-broker --bin weir
fi

mkdir -p "$dir"
pids=()
cleanup() {
  echo
  echo "dev-cluster: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM

etcd --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((etcd_port + 1))" \
  >"$dir/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$etcd_port") 2>/dev/null && break
  sleep 0.1
done

bootstrap=""
for i in $(seq 1 "$brokers"); do
  port=$((9091 + i))
  admin=$((9643 + i))
  target/release/weir serve \
    --node-id "$i" \
    --etcd "http://127.0.0.1:$etcd_port" \
    --listener "127.0.0.1:$port" \
    --admin-listener "127.0.0.1:$admin" \
    --data-dir "$dir/broker-$i" \
    >"$dir/broker-$i.log" 2>&1 &
  pids+=($!)
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$port"
done

cat <<EOF
dev-cluster: etcd on 127.0.0.1:$etcd_port and $brokers brokers (data and logs in $dir)
  bootstrap servers: $bootstrap
  try:  kcat -b $bootstrap -L
        target/release/weir --brokers $bootstrap topic create orders --partitions 6 --replication-factor 3
  stop: Ctrl-C
EOF
wait
