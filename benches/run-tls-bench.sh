#!/usr/bin/env bash
# TLS benchmark: what TLS costs a client of `ringtail serve`, plaintext and
# TLS measured in one run against one server (a PLAINTEXT listener and an
# SSL listener side by side), so the ratio compares figures minutes apart.
#
#   1. ringtail-bench produce, 1 KiB records, acks=all, to the plaintext
#      listener; then the same to the SSL listener (a fresh topic each).
#   2. ringtail-bench consume of each topic over the listener it was
#      produced on (from the log cache: the server's memory).
#
# The server runs with --flush never so that the disk's fsyncs do not hide
# the CPU that TLS adds (with flush=always this host is bound by its disk:
# the server benchmark's table). For each step the broker's CPU seconds
# (user + system, from /proc/PID/stat) are reported per GB moved, and the
# ratio TLS / plaintext. The certificate is a throwaway ECDSA P-256 one made
# with openssl for the run; TLS is rustls (ring), the cipher whatever the
# client and server agree (TLS 1.3, AES-GCM on x86-64 with AES-NI).
#
# Knobs (environment): BENCH_BYTES (1 GiB per step), PRODUCERS (4),
# PARTITIONS (4), BATCH_BYTES (983040), IN_FLIGHT (5).
# The markdown table goes to stdout, progress to stderr.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

BENCH_BYTES=${BENCH_BYTES:-$((1 << 30))}
RECORD_BYTES=1024
PRODUCERS=${PRODUCERS:-4}
PARTITIONS=${PARTITIONS:-4}
BATCH_BYTES=${BATCH_BYTES:-983040}
IN_FLIGHT=${IN_FLIGHT:-5}
MESSAGES=$((BENCH_BYTES / RECORD_BYTES))

log() { echo "run-tls-bench: $*" >&2; }
command -v openssl >/dev/null || { log "openssl is needed to make the run's certificate"; exit 1; }

cargo build --release -p ringtail-server --bin ringtail -p ringtail-benches --bin ringtail-bench >&2
target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)}"
ringtail="$target_dir/release/ringtail"
bench="$target_dir/release/ringtail-bench"

mkdir -p bench-data
run_dir=$(mktemp -d "$PWD/bench-data/tls.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" || true
    fi
    rm -rf "$run_dir"
}
trap cleanup EXIT

# A CA and a server certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -keyout "$run_dir/ca.key" -out "$run_dir/ca.pem" -subj "/CN=ringtail bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$run_dir/key.pem" -out "$run_dir/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$run_dir/ext.cnf"
openssl x509 -req -in "$run_dir/server.csr" -CA "$run_dir/ca.pem" -CAkey "$run_dir/ca.key" \
    -CAcreateserial -days 1 -extfile "$run_dir/ext.cnf" -out "$run_dir/cert.pem" 2>/dev/null
printf 'security.protocol=SSL\nssl.ca.location=%s\n' "$run_dir/ca.pem" >"$run_dir/tls.properties"
cat >"$run_dir/ringtail.toml" <<EOF
[[listener]]
name = "tls"
address = "127.0.0.1:0"
security-protocol = "SSL"
tls-cert = "$run_dir/cert.pem"
tls-key = "$run_dir/key.pem"
EOF

out="$run_dir/server.out"
"$ringtail" serve --config "$run_dir/ringtail.toml" --data-dir "$run_dir/data" --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --flush never --log-cache-bytes $((BENCH_BYTES * 5 / 2)) \
    >"$out" 2>"$run_dir/server.log" &
server_pid=$!
deadline=$((SECONDS + 120))
until grep -q '^ringtail ready: ' "$out"; do
    if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        log "ringtail serve did not become ready"; cat "$run_dir/server.log" >&2; exit 1
    fi
    sleep 0.1
done
plain=$(sed -n 's/^ringtail ready: kafka on \([^,]*\),.*/\1/p' "$out")
tls=$(sed -n 's/.*listener tls (SSL) on \([^,]*\),.*/\1/p' "$out")
log "server up: $(head -n 1 "$out")"

# The broker's CPU seconds so far (user + system).
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat"
}

# Runs one step: prints "MB/s cpu-seconds-per-GB" and logs the summary.
step() {
    local before after out mbs
    before=$(cpu_seconds)
    out=$("$bench" "$@" --size "$RECORD_BYTES")
    after=$(cpu_seconds)
    sed -n '1p' <<<"$out" >&2
    mbs=$(grep '^| ' <<<"$out" | tail -n 1 | awk -F'|' '{ gsub(/ /, "", $8); print $8 }')
    awk -v b="$before" -v a="$after" -v m="$mbs" -v bytes="$BENCH_BYTES" \
        'BEGIN { printf "%s %.1f", m, (a - b) / (bytes / 1e9) }'
}

produce=(produce --messages "$MESSAGES" --partitions "$PARTITIONS" --producers "$PRODUCERS"
    --batch-bytes "$BATCH_BYTES" --in-flight "$IN_FLIGHT" --acks all)
log "produce over plaintext"
row=$(step "${produce[@]}" --topic plain --bootstrap "$plain")
read -r plain_produce plain_produce_cpu <<<"$row"
log "produce over TLS"
row=$(step "${produce[@]}" --topic tls --bootstrap "$tls" \
    --command-config "$run_dir/tls.properties")
read -r tls_produce tls_produce_cpu <<<"$row"
log "consume over plaintext"
row=$(step consume --messages "$MESSAGES" --topic plain --bootstrap "$plain")
read -r plain_consume plain_consume_cpu <<<"$row"
log "consume over TLS"
row=$(step consume --messages "$MESSAGES" --topic tls --bootstrap "$tls" \
    --command-config "$run_dir/tls.properties")
read -r tls_consume tls_consume_cpu <<<"$row"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<EOF
| Run ($((BENCH_BYTES >> 20)) MiB of 1 KiB records, flush=never) | plaintext MB/s | TLS MB/s | TLS / plaintext | broker CPU s/GB plaintext | TLS |
|---|---|---|---|---|---|
| produce, acks=all, $PRODUCERS producers, $((BATCH_BYTES >> 10)) KiB batches | $plain_produce | $tls_produce | $(ratio "$tls_produce" "$plain_produce") × | $plain_produce_cpu | $tls_produce_cpu |
| consume (from the log cache) | $plain_consume | $tls_consume | $(ratio "$tls_consume" "$plain_consume") × | $plain_consume_cpu | $tls_consume_cpu |
EOF
