#!/usr/bin/env bash
# Runs the storage criterion benchmarks between two rounds of fio on the same disk, so the
# engine's figures can be compared with the machine's limit measured at (nearly) the same
# time. Usage: benches/run-storage.sh [dir-on-the-disk-to-measure] (default: ./target-bench-io)
# Needs fio (`apt-get install -y fio`). Prints a summary; criterion's full output goes to
# $OUT/criterion.log.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-$PWD/target-bench-io}
OUT=${OUT:-$DIR/results}
mkdir -p "$DIR" "$OUT"

fio_round() {
  local tag=$1
  for cfg in "16k 1" "16k 4" "64k 1" "1m 1" "1m 4" "16k 0" "1m 0"; do
    set -- $cfg
    local sync=()
    [ "$2" != 0 ] && sync=(--fdatasync="$2")
    fio --name=w --directory="$DIR" --rw=write --bs="$1" --size=1g "${sync[@]}" \
      --ioengine=psync --runtime=5 --time_based --unlink=1 --output-format=json 2>/dev/null |
      python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]["write"]
print("fio %-6s bs=%-4s fdatasync=%-2s %9.1f MiB/s %8.0f IOPS" % (sys.argv[1], sys.argv[2], sys.argv[3], j["bw_bytes"] / 2**20, j["iops"]))
' "$tag" "$1" "$2"
  done
}

# Many partitions, one file each: 32 jobs of 32 files (1024 files), 1 KiB and 16 KiB writes to
# a random file, an fdatasync after each: the raw side of storage_vs_disk's many-files table.
fio_many() {
  local tag=$1
  for bs in 1k 16k; do
    fio --name=many --directory="$DIR" --rw=write --bs="$bs" --size=32m --nrfiles=32 \
      --file_service_type=random --numjobs=32 --group_reporting --fdatasync=1 \
      --ioengine=psync --runtime=5 --time_based --unlink=1 --output-format=json 2>/dev/null |
      python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]["write"]
print("fio %-6s 1024 files, 32 jobs, bs=%-4s fdatasync=1 %9.1f MiB/s %8.0f IOPS" % (sys.argv[1], sys.argv[2], j["bw_bytes"] / 2**20, j["iops"]))
' "$tag" "$bs"
  done
}

echo "== $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
fio_round before | tee "$OUT/fio-before.txt"
fio_many before | tee -a "$OUT/fio-before.txt"
WEIR_BENCH_DIR="$DIR" cargo bench -p weir-benches --bench storage 2>&1 | tee "$OUT/criterion.log" |
  grep -E '^(append|read)/|thrpt:' | paste - - | sed -E 's/ +/ /g'
fio_round after | tee "$OUT/fio-after.txt"
fio_many after | tee -a "$OUT/fio-after.txt"
echo "== interleaved engine vs raw pwrite+fdatasync loops (medians of 5 alternating 1.5 s runs;"
echo "   one file, then 1000 partitions against 32 raw jobs over 1000 files)"
cargo run -q --release -p weir-benches --example storage_vs_disk -- "$DIR" 5 1.5 | tee "$OUT/interleaved.md"
echo "== done $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
