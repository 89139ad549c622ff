#!/usr/bin/env bash
# Server benchmark: the `ringtail serve` binary over the Kafka protocol,
# next to fio on the same disk, all in one invocation so that the ratios
# compare figures measured minutes apart rather than days apart (this
# host's disk swings by 30 % and more between runs).
#
#   1. fio: sequential 1 MiB O_DIRECT writes, libaio, queue depth 8 (4 GiB):
#      the disk's streaming ceiling; then the same file read back the same
#      way, the ceiling of a consumer reading from the disk.
#   2. fio: 4-64 KiB appends with fdatasync after each: the p99 of the
#      fdatasync calls (fio's JSON `sync` percentiles), the floor of any
#      acks=all latency under flush=always.
#   3. ringtail-bench produce, 1 KiB records, 4 GiB, acks=all, server with
#      --flush always (the default).
#   3a. On the same server, three more produce runs (flush=always):
#      two producers with one request in flight each, 1 MB batches, a
#      partition each, next to fio in that shape (two jobs, each writing
#      batch-sized O_DIRECT appends to a file of its own with an fdatasync
#      after each): a device flush per batch on both sides, counted; then
#      4 KiB batches on 4 partitions and on 1,000 partitions: what many
#      partitions cost when every request lands on a partition of its own,
#      next to fio with as many files as requests in flight, one O_DSYNC
#      append of a batch in flight on each (the floor of a durable write
#      per request).
#   3b. The same against three nodes on this host (each a broker and a
#      controller voter), replication factor 3, acks=all, flush=always:
#      what replication costs when three brokers and the load generator
#      share the host's cores and disk (goal: at least 0.5 × step 3).
#   4. The same with the server restarted with --flush never.
#   5. ringtail-bench consume of the records step 4 just produced: served
#      from the broker's log cache (memory); then a second consumer of the
#      same records (the first read 8-25 % slower than the second in every
#      pair measured on the development VM, all cache hits). Then the
#      records of step 3:
#      segments are written and read with direct I/O and the server has
#      restarted since, so every byte comes from the disk. Then, on the
#      flush=never server, step 3a's two-producer run again: its figure with
#      no device flush at all is the ceiling of any sharing of flushes
#      between its producers.
#   6. The server restarted with --flush always; produce paced at half of
#      the rate step 3 reached: request p99 (from each request's scheduled
#      time) against 3 × the fdatasync p99 of step 2. Then fio alone in
#      that run's shape (a file per partition, batch-sized appends, each
#      durable before the next, at the MB/s it achieved): the device's own
#      p99 for that load. fio counts a stall once, where the broker's
#      figure counts every request the stall delayed; so the same shape
#      runs again in disk-shape (benches/), its latency counted from each
#      append's due time: the fair floor under the broker's p99.
#   7. fio's sequential write again; the produce rows compare with the
#      higher of the two fio figures (this disk's swings between runs).
#
# Device flushes are counted from /proc/diskstats around every step, to
# show what durability each figure had, and the broker's CPU time (user and
# system, from /proc/PID/stat) around each produce and consume run, per GB
# of record values moved. Data lives in a fresh directory
# under ./bench-data (the disk under test, not a tmpfs), removed at the end.
# Installs fio and jq if missing (bench hosts only) and builds in release.
#
# Servers run with a log cache of CACHE_BYTES (default BENCH_BYTES + 25 %,
# so that step 5's first read is served from memory whatever the host's
# default, a quarter of its RAM), pretouched before the ready line. The
# half-load server's cache is HALF_CACHE_BYTES (default 1 GiB): nothing
# reads that run's records, and on the development VM the memory a guest
# holds slows its disk: with 4 GiB more resident (the server's own cache,
# or an idle process holding it) the half-load p99 went from 12-21 ms to
# 287-625 ms in alternating runs.
#
# Knobs (environment): BENCH_BYTES (4 GiB), CACHE_BYTES, HALF_CACHE_BYTES,
# PAIR_BYTES (BENCH_BYTES / 2: step 3a's two-producer run and its fio),
# SMALL_BYTES (BENCH_BYTES / 16: each of its 4 KiB-batch runs),
# MANY_PARTITIONS (1000), PRODUCERS (4), PARTITIONS (4),
# BATCH_BYTES (983040: 960 records of 1 KiB, a batch of about 992 KB with
# its framing, the most that librdkafka's default batch.size of 1,000,000 B
# holds), IN_FLIGHT (5), HALF_LOAD_SECS (30), SETTLE_SECS (10).
# The markdown table goes to stdout, progress to stderr.
set -euo pipefail
# A failing bench inside $(...) must stop the script, not yield an empty row.
shopt -s inherit_errexit

cd "$(dirname "$0")/.."

BENCH_BYTES=${BENCH_BYTES:-$((4 << 30))}
RECORD_BYTES=1024
PRODUCERS=${PRODUCERS:-4}
PARTITIONS=${PARTITIONS:-4}
BATCH_BYTES=${BATCH_BYTES:-983040}
IN_FLIGHT=${IN_FLIGHT:-5}
HALF_LOAD_SECS=${HALF_LOAD_SECS:-30}
SETTLE_SECS=${SETTLE_SECS:-10}
MESSAGES=$((BENCH_BYTES / RECORD_BYTES))
PAIR_BYTES=${PAIR_BYTES:-$((BENCH_BYTES / 2))}
SMALL_BYTES=${SMALL_BYTES:-$((BENCH_BYTES / 16))}
MANY_PARTITIONS=${MANY_PARTITIONS:-1000}
SMALL_BATCH_BYTES=4096
CACHE_BYTES=${CACHE_BYTES:-$((BENCH_BYTES + BENCH_BYTES / 4))}
HALF_CACHE_BYTES=${HALF_CACHE_BYTES:-$((1 << 30))}

log() { echo "run-server-bench: $*" >&2; }

for tool in fio jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "$tool not found: installing it (apt-get install -y $tool)"
        if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
        $sudo apt-get install -y "$tool" >&2 || {
            $sudo apt-get update >&2 && $sudo apt-get install -y "$tool" >&2
        }
    fi
done

cargo build --release -p ringtail-server --bin ringtail -p ringtail-benches --bin ringtail-bench \
    --bin disk-shape >&2
target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)}"
ringtail="$target_dir/release/ringtail"
bench="$target_dir/release/ringtail-bench"
disk_shape="$target_dir/release/disk-shape"

# A run directory of our own under ./bench-data, so that a concurrent
# append-bench (same parent) is not disturbed, and ./bench-data itself goes
# only if this run created it.
created_base=false
[ -d bench-data ] || created_base=true
mkdir -p bench-data
run_dir=$(mktemp -d "$PWD/bench-data/server.XXXXXX")
data_dir="$run_dir/data"
server_pid=""
cluster_pids=()

cleanup() {
    local status=$?
    for pid in "$server_pid" "${cluster_pids[@]}"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "$status" -ne 0 ]; then
        for f in "$run_dir"/server-*.log; do
            [ -f "$f" ] && { log "last lines of $(basename "$f"):"; tail -n 20 "$f" >&2; }
        done
    fi
    rm -rf "$run_dir"
    if $created_base; then rmdir bench-data 2>/dev/null || true; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The whole disk holding the run directory: flushes are accounted on the
# disk only, never on a partition.
majmin=$(findmnt -n -o MAJ:MIN -T "$run_dir" | head -n 1 | tr -d ' ')
sys=$(readlink -f "/sys/dev/block/$majmin" || true)
[ -n "$sys" ] && [ -e "$sys/partition" ] && sys=$(dirname "$sys")
device=$(basename "${sys:-vda}")
if ! awk -v d="$device" '$3 == d { found = 1 } END { exit !found }' /proc/diskstats; then
    log "warning: no /proc/diskstats entry for the disk under $run_dir; counting vda"
    device=vda
fi
# Column 19 of /proc/diskstats: flush requests completed (Linux 5.5+).
flushes() { awk -v d="$device" '$3 == d { print $19 }' /proc/diskstats; }

# Fails unless the run directory's file system has $1 bytes free (with 1 GiB
# to spare): a full disk mid-run fails the step that hits it, and
# everything else on the machine with it.
need_space() {
    local free
    free=$(df --output=avail -B1 "$run_dir" | tail -n 1 | tr -d ' ')
    if [ "$free" -lt $(($1 + (1 << 30))) ]; then
        log "$2 needs $(($1 >> 20)) MiB free under $run_dir, and 1 GiB to spare; $((free >> 20)) MiB are"
        exit 1
    fi
}
# The two single-node produce runs, the three replicas of the cluster's,
# fio's file, and step 3a's runs.
need_space $((6 * BENCH_BYTES + 2 * PAIR_BYTES + 2 * SMALL_BYTES)) "the produce runs"

# Lets the next step start from a quiet disk: write back what the last one
# left, then let the host drain what it absorbed.
settle() { sync; sleep "$SETTLE_SECS"; }

# fio's JSON, without any notes it prints before the document.
fio_json() { fio "$@" --output-format=json | sed -n '/^{/,$p'; }

log "data under $run_dir on $device; $(nproc) cores; $(uname -r)"

# 1. The disk's streaming ceiling: sets fio_write_mbs (and the flush
# count) from fio's sequential O_DIRECT writes into fio-direct.dat, which
# is left for the read that follows.
fio_write() {
    log "fio: sequential 1 MiB O_DIRECT writes, libaio qd8, $BENCH_BYTES B"
    local json before=$(flushes)
    json=$(fio_json --name=seq-odirect --filename="$run_dir/fio-direct.dat" --rw=write --bs=1M \
        --direct=1 --ioengine=libaio --iodepth=8 --size="$BENCH_BYTES")
    fio_direct_flushes=$(($(flushes) - before))
    fio_write_mbs=$(jq '.jobs[0].write.bw_bytes / 1e6' <<<"$json")
}
fio_write
fio_first_mbs=$fio_write_mbs
log "  $fio_first_mbs MB/s, $fio_direct_flushes device flushes"
settle
log "fio: sequential 1 MiB O_DIRECT reads of that file, libaio qd8"
json=$(fio_json --name=seq-odirect-read --filename="$run_dir/fio-direct.dat" --rw=read --bs=1M \
    --direct=1 --ioengine=libaio --iodepth=8 --size="$BENCH_BYTES")
rm -f "$run_dir/fio-direct.dat"
fio_read_mbs=$(jq '.jobs[0].read.bw_bytes / 1e6' <<<"$json")
log "  $fio_read_mbs MB/s"
settle

# 2. What one fdatasync after an append costs. Bounded by time as well as
# size: ~4,000 syncs/s on a good day, far fewer on a bad one.
log "fio: 4-64 KiB appends, fdatasync after each"
before=$(flushes)
json=$(fio_json --name=append-fdatasync --filename="$run_dir/fio-sync.dat" --rw=write \
    --bsrange=4k-64k --ioengine=sync --fdatasync=1 --size=1g --runtime=20)
fio_sync_flushes=$(($(flushes) - before))
rm -f "$run_dir/fio-sync.dat"
fio_sync_p99_ms=$(jq '.jobs[0].sync.lat_ns.percentile["99.000000"] / 1e6' <<<"$json")
fio_sync_count=$(jq '.jobs[0].sync.lat_ns.N' <<<"$json")
fio_write_p99_ms=$(jq '.jobs[0].write.clat_ns.percentile["99.000000"] / 1e6' <<<"$json")
log "  fdatasync p99 $fio_sync_p99_ms ms over $fio_sync_count syncs (write p99 $fio_write_p99_ms ms), $fio_sync_flushes device flushes"
settle

# Starts `ringtail serve` on the data directory with --flush "$1" and a log
# cache of "$2" bytes (default CACHE_BYTES) on ephemeral ports; sets
# server_pid and bootstrap.
start_server() {
    local flush=$1 cache=${2:-$CACHE_BYTES} out="$run_dir/server-$1.out" deadline
    : >"$out"
    "$ringtail" serve --data-dir "$data_dir" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
        --flush "$flush" --log-cache-bytes "$cache" --log-cache-pretouch true >"$out" 2>>"$run_dir/server-$flush.log" &
    server_pid=$!
    deadline=$((SECONDS + 120))
    until grep -q '^ringtail ready: ' "$out"; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "ringtail serve --flush $flush did not become ready"
            return 1
        fi
        sleep 0.1
    done
    bootstrap=$(sed -n 's/^ringtail ready: kafka on \([^,]*\),.*/\1/p' "$out")
    log "server up (--flush $flush): $(head -n 1 "$out")"
}

# The server's CPU time so far (user + system), in seconds.
clock_ticks=$(getconf CLK_TCK)
cpu_secs() { awk -v t="$clock_ticks" '{ print ($14 + $15) / t }' "/proc/$server_pid/stat"; }
# CPU seconds per GB of record values, from cpu_secs before ($1) and after
# ($2) a run that moved $3 records.
cpu_per_gb() {
    awk -v a="$1" -v b="$2" -v m="$3" -v r="$RECORD_BYTES" 'BEGIN { printf "%.2f", (b - a) / (m * r / 1e9) }'
}

# SIGTERM: the server syncs and exits 0; bounded, then SIGKILL.
stop_server() {
    local deadline=$((SECONDS + 120))
    kill -TERM "$server_pid"
    while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$server_pid" 2>/dev/null; then
        log "warning: server ignored SIGTERM for 120 s; killing it"
        kill -KILL "$server_pid"
    fi
    wait "$server_pid" || log "warning: server exited with status $?"
    server_pid=""
}

# Runs ringtail-bench, echoes its summary to stderr and prints its table
# row. Row columns (split on '|'): 8 MB/s, 9 msgs/s, 10 p50 ms, 11 p99 ms.
run_bench() {
    local out
    out=$("$bench" "$@" --bootstrap "$bootstrap" --size "$RECORD_BYTES")
    sed -n '1p' <<<"$out" >&2
    grep '^| ' <<<"$out" | tail -n 1
}
col() { awk -F'|' -v c="$2" '{ gsub(/ /, "", $c); print $c }' <<<"$1"; }

produce_args=(--partitions "$PARTITIONS" --producers "$PRODUCERS" --batch-bytes "$BATCH_BYTES"
    --in-flight "$IN_FLIGHT" --acks all)

# 3. acks=all, flush=always.
start_server always
log "produce: $MESSAGES × $RECORD_BYTES B, acks=all, flush=always"
before=$(flushes)
cpu=$(cpu_secs)
row=$(run_bench produce --topic always --messages "$MESSAGES" "${produce_args[@]}")
always_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$MESSAGES")
always_flushes=$(($(flushes) - before))
always_mbs=$(col "$row" 8)
always_rate=$(col "$row" 9)

# 3a. Two producers, one request in flight each, 1 MB batches, a partition
# each; sets pair_mbs, pair_flushes (per batch) and pair_cpu from a run on
# topic $1 against the server as started (flush=$2).
pair_messages=$((PAIR_BYTES / RECORD_BYTES))
pair_batches=$(((pair_messages + BATCH_BYTES / RECORD_BYTES - 1) / (BATCH_BYTES / RECORD_BYTES)))
pair_run() {
    local before cpu row
    settle
    log "produce: $pair_messages × $RECORD_BYTES B, 2 producers × 1 in flight, a partition each, flush=$2 ($1)"
    before=$(flushes)
    cpu=$(cpu_secs)
    row=$(run_bench produce --topic "$1" --messages "$pair_messages" --partitions 2 --producers 2 \
        --partition-per-producer --batch-bytes "$BATCH_BYTES" --in-flight 1 --acks all)
    pair_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$pair_messages")
    pair_flushes=$(awk -v f="$(($(flushes) - before))" -v b="$pair_batches" 'BEGIN { printf "%.2f", f / b }')
    pair_mbs=$(col "$row" 8)
}
pair_run pair always

# 4 KiB batches on PARTITIONS and on MANY_PARTITIONS partitions; sets
# small_mbs, small_p99_ms, small_flushes and small_cpu.
small_messages=$((SMALL_BYTES / RECORD_BYTES))
small_run() {
    local before cpu row
    settle
    log "produce: $small_messages × $RECORD_BYTES B in $SMALL_BATCH_BYTES B batches, $1 partitions, flush=always"
    before=$(flushes)
    cpu=$(cpu_secs)
    row=$(run_bench produce --topic "small-$1" --messages "$small_messages" --partitions "$1" \
        --producers "$PRODUCERS" --batch-bytes "$SMALL_BATCH_BYTES" --in-flight "$IN_FLIGHT" --acks all)
    small_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$small_messages")
    small_flushes=$(($(flushes) - before))
    small_mbs=$(col "$row" 8)
    small_p99_ms=$(col "$row" 11)
}
small_run "$PARTITIONS"
few_mbs=$small_mbs few_p99_ms=$small_p99_ms few_flushes=$small_flushes few_cpu=$small_cpu
small_run "$MANY_PARTITIONS"
many_mbs=$small_mbs many_p99_ms=$small_p99_ms many_flushes=$small_flushes many_cpu=$small_cpu
stop_server
settle

# The many-partition run's floor: the disk alone with as many appenders as
# the run had requests in flight, each on a file of its own with one
# batch-sized O_DSYNC append at a time (what a durable round per request
# costs when no two requests share a log). The files grow with each append,
# as segments do (no preallocation): each durable write then also makes
# the new size durable, which preallocated files measured ~20 % faster.
many_jobs=$((PRODUCERS * IN_FLIGHT))
log "fio: $many_jobs files, $SMALL_BATCH_BYTES B O_DSYNC appends, one in flight each"
before=$(flushes)
json=$(fio_json --name=many-shape --directory="$run_dir" --rw=write --bs="$SMALL_BATCH_BYTES" --direct=1 \
    --sync=dsync --ioengine=psync --fallocate=none --file_append=1 --numjobs="$many_jobs" \
    --size="$((SMALL_BYTES / many_jobs))" --group_reporting)
rm -f "$run_dir"/many-shape.*
fio_many_mbs=$(jq '.jobs[0].write.bw_bytes / 1e6' <<<"$json")
fio_many_flushes=$(awk -v f="$(($(flushes) - before))" -v n="$((SMALL_BYTES / SMALL_BATCH_BYTES))" 'BEGIN { printf "%.2f", f / n }')
log "  $fio_many_mbs MB/s, $fio_many_flushes device flushes per append"
settle

# The two-producer run's reference: fio in its shape, a flush per append.
log "fio: 2 jobs, $BATCH_BYTES B O_DIRECT appends, fdatasync after each, $PAIR_BYTES B in all"
before=$(flushes)
json=$(fio_json --name=pair-shape --directory="$run_dir" --rw=write --bs="$(((BATCH_BYTES + 4095) / 4096 * 4096))" \
    --direct=1 --ioengine=psync --fdatasync=1 --numjobs=2 --size="$((PAIR_BYTES / 2))" --group_reporting)
rm -f "$run_dir"/pair-shape.*
fio_pair_mbs=$(jq '.jobs[0].write.bw_bytes / 1e6' <<<"$json")
fio_pair_syncs=$(jq '.jobs[0].sync.lat_ns.N' <<<"$json")
fio_pair_flushes=$(awk -v f="$(($(flushes) - before))" -v n="$fio_pair_syncs" 'BEGIN { printf "%.2f", f / n }')
fio_pair_sync_p50_ms=$(jq '.jobs[0].sync.lat_ns.percentile["50.000000"] / 1e6' <<<"$json")
fio_pair_write_p50_ms=$(jq '.jobs[0].write.clat_ns.percentile["50.000000"] / 1e6' <<<"$json")
log "  $fio_pair_mbs MB/s, $fio_pair_flushes device flushes per append (write p50 $fio_pair_write_p50_ms ms, fdatasync p50 $fio_pair_sync_p50_ms ms)"
settle

# 3b. Three nodes, replication factor 3 (the servers' default for three
# brokers), acks=all, flush=always. Each node's log cache is
# HALF_CACHE_BYTES: only the followers' fetches of the newest records read
# it, and three caches of CACHE_BYTES would not fit beside each other.
start_cluster() {
    local base=$((30000 + RANDOM % 20000)) voters="" i out deadline
    for i in 1 2 3; do voters+="${voters:+,}$i@127.0.0.1:$((base + i))"; done
    for i in 1 2 3; do
        out="$run_dir/rf3-$i.out"
        : >"$out"
        "$ringtail" serve --node-id "$i" --controllers "$voters" --data-dir "$run_dir/rf3-$i" \
            --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --flush always \
            --log-cache-bytes "$HALF_CACHE_BYTES" >"$out" 2>>"$run_dir/server-rf3-$i.log" &
        cluster_pids+=($!)
    done
    bootstrap=""
    deadline=$((SECONDS + 120))
    for i in 1 2 3; do
        out="$run_dir/rf3-$i.out"
        until grep -q '^ringtail ready: ' "$out"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "node $i of the cluster did not become ready"
                return 1
            fi
            sleep 0.1
        done
        bootstrap+="${bootstrap:+,}$(sed -n 's/^ringtail ready: kafka on \([^,]*\),.*/\1/p' "$out")"
    done
    log "cluster up: $bootstrap (voters $voters)"
}
stop_cluster() {
    local pid
    kill -TERM "${cluster_pids[@]}"
    for pid in "${cluster_pids[@]}"; do wait "$pid" || log "warning: a cluster node exited with status $?"; done
    cluster_pids=()
    rm -rf "$run_dir"/rf3-*
}
start_cluster
log "produce: $MESSAGES × $RECORD_BYTES B, acks=all, flush=always, 3 nodes, replication factor 3"
before=$(flushes)
row=$(run_bench produce --topic rf3 --messages "$MESSAGES" "${produce_args[@]}")
rf3_flushes=$(($(flushes) - before))
rf3_mbs=$(col "$row" 8)
rf3_p99_ms=$(col "$row" 11)
stop_cluster
settle

# 4. acks=all, flush=never, same data directory.
start_server never
log "produce: $MESSAGES × $RECORD_BYTES B, acks=all, flush=never"
before=$(flushes)
cpu=$(cpu_secs)
row=$(run_bench produce --topic never --messages "$MESSAGES" "${produce_args[@]}")
never_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$MESSAGES")
never_flushes=$(($(flushes) - before))
never_mbs=$(col "$row" 8)

# 5. Read back what step 4 just wrote (from the log cache), then what
# step 3 wrote: from the disk (direct I/O, no page cache; the log cache
# went with the restart).
settle
log "consume: $MESSAGES records of topic never (log cache), twice"
cpu=$(cpu_secs)
row=$(run_bench consume --topic never --messages "$MESSAGES")
cached_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$MESSAGES")
cached_mbs=$(col "$row" 8)
row=$(run_bench consume --topic never --messages "$MESSAGES")
cached_again_mbs=$(col "$row" 8)
settle
log "consume: $MESSAGES records of topic always (disk)"
cpu=$(cpu_secs)
row=$(run_bench consume --topic always --messages "$MESSAGES")
consume_cpu=$(cpu_per_gb "$cpu" "$(cpu_secs)" "$MESSAGES")
consume_mbs=$(col "$row" 8)
# The two-producer run with no device flush at all: the most that any
# sharing of flushes between their appends could give them. After the
# consumers, so that its records do not push step 4's out of the cache.
pair_always=("$pair_mbs" "$pair_flushes" "$pair_cpu")
pair_run pair-never never
pair_never_mbs=$pair_mbs pair_never_flushes=$pair_flushes
pair_mbs=${pair_always[0]} pair_flushes=${pair_always[1]} pair_cpu=${pair_always[2]}
stop_server
settle

# 6. Half of step 3's rate under flush=always, for latency without queueing.
half_rate=$(awk -v r="$always_rate" 'BEGIN { printf "%d", r / 2 }')
half_messages=$((half_rate * HALF_LOAD_SECS))
# The records of the runs before are read and done with.
rm -rf "$data_dir"
need_space $((half_messages * (RECORD_BYTES + 64))) "the half-load run"
start_server always "$HALF_CACHE_BYTES"
log "produce paced at $half_rate msgs/s (half of $always_rate) for ${HALF_LOAD_SECS} s, flush=always"
before=$(flushes)
row=$(run_bench produce --topic half --messages "$half_messages" --rate "$half_rate" "${produce_args[@]}")
half_flushes=$(($(flushes) - before))
half_mbs=$(col "$row" 8)
half_achieved=$(col "$row" 9)
half_p50_ms=$(col "$row" 10)
half_p99_ms=$(col "$row" 11)
stop_server
rm -rf "$data_dir"

# 6b. The device alone in the half-load run's shape: a file per partition,
# each taking batch-sized O_DIRECT appends that are durable before the
# next (O_DSYNC: the write returns after its fdatasync), paced at the MB/s
# the ringtail run achieved. Its p99 is the floor of that run's p99 on
# this disk, with no network, no broker and no second process.
settle
shape_bs=$(((BATCH_BYTES + 4095) / 4096 * 4096))
shape_rate=$(awk -v m="$half_mbs" -v p="$PARTITIONS" 'BEGIN { printf "%d", m * 1e6 / p }')
shape_size=$((shape_rate * HALF_LOAD_SECS + 64 * shape_bs))
need_space $((shape_size * PARTITIONS)) "fio in the half-load shape"
log "fio: the half-load shape: $PARTITIONS files, $shape_bs B O_DSYNC appends, $shape_rate B/s each, ${HALF_LOAD_SECS} s"
before=$(flushes)
json=$(fio_json --name=half-shape --directory="$run_dir" --rw=write --bs="$shape_bs" --direct=1 \
    --sync=dsync --ioengine=psync --numjobs="$PARTITIONS" --rate="$shape_rate" --size="$shape_size" \
    --runtime="$HALF_LOAD_SECS" --time_based --group_reporting)
shape_flushes=$(($(flushes) - before))
rm -f "$run_dir"/half-shape.*
shape_mbs=$(jq '.jobs[0].write.bw_bytes / 1e6' <<<"$json")
shape_p50_ms=$(jq '.jobs[0].write.clat_ns.percentile["50.000000"] / 1e6' <<<"$json")
shape_p99_ms=$(jq '.jobs[0].write.clat_ns.percentile["99.000000"] / 1e6' <<<"$json")
log "  $shape_mbs MB/s, append p50 $shape_p50_ms ms, p99 $shape_p99_ms ms, $shape_flushes device flushes"

# 6c. The same shape counted as ringtail-bench counts the broker: from each
# append's due time, appends that fell due during a slow one written
# together (group commit). fio's p99 above counts a stall once; this one
# counts every append the stall delayed, as the broker's p99 does, so it is
# the floor under the broker's figure (benches/src/bin/disk_shape.rs).
settle
log "disk-shape: the half-load shape, latency from each append's due time"
before=$(flushes)
due_line=$("$disk_shape" --dir "$run_dir" --files "$PARTITIONS" --block-bytes "$BATCH_BYTES" \
    --rate "$shape_rate" --secs "$HALF_LOAD_SECS")
due_flushes=$(($(flushes) - before))
log "  $due_line, $due_flushes device flushes"
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$due_line"; }
due_mbs=$(kv mb_per_s)
due_p50_ms=$(kv due_p50_ms)
due_p99_ms=$(kv due_p99_ms)
due_service_p99_ms=$(kv service_p99_ms)

# 7. fio's write figure again: it has swung from 1.3 to 2.1 GB/s between
# runs on the development VM. The produce rows are compared with the
# higher of the two, the ceiling the disk showed during this run.
settle
fio_write
fio_last_mbs=$fio_write_mbs
rm -f "$run_dir/fio-direct.dat"
log "  $fio_last_mbs MB/s (first: $fio_first_mbs MB/s)"
fio_direct_mbs=$(awk -v a="$fio_first_mbs" -v b="$fio_last_mbs" 'BEGIN { print (a > b) ? a : b }')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.'"${2:-1}"'f", a }'; }
sync_budget_ms=$(awk -v p="$fio_sync_p99_ms" 'BEGIN { printf "%.2f", 3 * p }')
verdict=$(awk -v a="$half_p99_ms" -v b="$sync_budget_ms" 'BEGIN { print (a <= b) ? "within" : "over" }')

cat <<EOF

Server benchmark, $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -r), disk $device:
1 KiB records, $((BENCH_BYTES >> 20)) MiB per produce run, $PRODUCERS producers × $IN_FLIGHT in flight,
$BATCH_BYTES B batches, $PARTITIONS partitions, acks=all, loopback, io auto,
servers started with --log-cache-bytes $CACHE_BYTES --log-cache-pretouch true
(the half-load one with --log-cache-bytes $HALF_CACHE_BYTES); paced producers take turns.

| measure | ringtail | reference | ratio | device flushes | broker CPU s/GB |
|---|---:|---:|---:|---:|---:|
| produce MB/s, flush=always | $(fmt "$always_mbs") | fio O_DIRECT qd8 $(fmt "$fio_direct_mbs") MB/s | $(ratio "$always_mbs" "$fio_direct_mbs") × | $always_flushes | $always_cpu |
| produce MB/s, flush=always, 2 producers × 1 in flight, $BATCH_BYTES B batches, a partition each | $(fmt "$pair_mbs") | fio, 2 jobs, O_DIRECT appends of a batch, fdatasync after each $(fmt "$fio_pair_mbs") MB/s ($fio_pair_flushes device flushes per append; write p50 $(fmt "$fio_pair_write_p50_ms" 2) ms, fdatasync p50 $(fmt "$fio_pair_sync_p50_ms" 2) ms) | $(ratio "$pair_mbs" "$fio_pair_mbs") × | $pair_flushes per batch | $pair_cpu |
| produce MB/s, flush=always, $SMALL_BATCH_BYTES B batches, $MANY_PARTITIONS partitions (request p99 $(fmt "$many_p99_ms" 1) ms) | $(fmt "$many_mbs") | $PARTITIONS partitions, same batches $(fmt "$few_mbs") MB/s (request p99 $(fmt "$few_p99_ms" 1) ms, $few_flushes device flushes, $few_cpu CPU s/GB) | $(ratio "$many_mbs" "$few_mbs") × | $many_flushes | $many_cpu |
| the two-producer run under flush=never (no device flush: the ceiling of any flush sharing) | $(fmt "$pair_never_mbs") | flush=always, the same run $(fmt "$pair_mbs") MB/s | $(ratio "$pair_never_mbs" "$pair_mbs") × | $pair_never_flushes per batch | – |
| the same $MANY_PARTITIONS-partition run against the disk alone in its shape (fio, $many_jobs files, one $SMALL_BATCH_BYTES B O_DSYNC append in flight on each, $fio_many_flushes device flushes per append) | $(fmt "$many_mbs") | fio $(fmt "$fio_many_mbs") MB/s | $(ratio "$many_mbs" "$fio_many_mbs") × | – | – |
| produce MB/s, flush=always, 3 nodes, replication factor 3 (request p99 $(fmt "$rf3_p99_ms" 1) ms) | $(fmt "$rf3_mbs") | one node, flush=always $(fmt "$always_mbs") MB/s | $(ratio "$rf3_mbs" "$always_mbs") × | $rf3_flushes | – |
| produce MB/s, flush=never | $(fmt "$never_mbs") | fio O_DIRECT qd8 $(fmt "$fio_direct_mbs") MB/s | $(ratio "$never_mbs" "$fio_direct_mbs") × | $never_flushes | $never_cpu |
| consume MB/s, from the log cache | $(fmt "$cached_mbs") | fio O_DIRECT read qd8 $(fmt "$fio_read_mbs") MB/s | $(ratio "$cached_mbs" "$fio_read_mbs") × | – | $cached_cpu |
| consume MB/s, from the log cache, a second consumer | $(fmt "$cached_again_mbs") | fio O_DIRECT read qd8 $(fmt "$fio_read_mbs") MB/s | $(ratio "$cached_again_mbs" "$fio_read_mbs") × | – | – |
| consume MB/s, from disk | $(fmt "$consume_mbs") | fio O_DIRECT read qd8 $(fmt "$fio_read_mbs") MB/s | $(ratio "$consume_mbs" "$fio_read_mbs") × | – | $consume_cpu |
| produce p99 ms at half load (target $half_rate msgs/s, achieved $half_achieved = $(fmt "$half_mbs") MB/s; p50 $(fmt "$half_p50_ms" 2) ms), flush=always | $(fmt "$half_p99_ms" 2) | 3 × fio fdatasync p99 ($(fmt "$fio_sync_p99_ms" 2) ms) = $sync_budget_ms ms | $(ratio "$half_p99_ms" "$sync_budget_ms") × ($verdict) | $half_flushes | – |
| the same p99 against fio in the half-load shape ($PARTITIONS files, $shape_bs B O_DSYNC appends, $(fmt "$shape_mbs") MB/s; p50 $(fmt "$shape_p50_ms" 2) ms) | $(fmt "$half_p99_ms" 2) | fio append p99 $(fmt "$shape_p99_ms" 2) ms, $(ratio "$shape_p99_ms" "$sync_budget_ms") × the budget | $(ratio "$half_p99_ms" "$shape_p99_ms") × | $shape_flushes | – |
| the same p99 against the disk alone in that shape, counted from due times as ringtail-bench counts (disk-shape, $(fmt "$due_mbs") MB/s; p50 $(fmt "$due_p50_ms" 2) ms, service p99 $(fmt "$due_service_p99_ms" 2) ms) | $(fmt "$half_p99_ms" 2) | disk-shape p99 $(fmt "$due_p99_ms" 2) ms, $(ratio "$due_p99_ms" "$sync_budget_ms") × the budget | $(ratio "$half_p99_ms" "$due_p99_ms") × | $due_flushes | – |

fio fdatasync: $fio_sync_count syncs after 4-64 KiB appends (write p99 $(fmt "$fio_write_p99_ms" 3) ms), $fio_sync_flushes device flushes;
fio O_DIRECT write: $(fmt "$fio_first_mbs") MB/s before the ringtail runs, $(fmt "$fio_last_mbs") MB/s after them (the table uses the higher), $fio_direct_flushes device flushes.
EOF
# Latency counts from each request's scheduled time: a server that cannot
# keep the schedule shows its growing backlog there, which is then what
# the figure mostly measures.
if awk -v a="$half_achieved" -v t="$half_rate" 'BEGIN { exit !(a < 0.97 * t) }'; then
    echo
    echo "Note: the half-load run fell behind its schedule ($half_achieved of $half_rate msgs/s); its p99 is mostly queueing behind that backlog."
fi
