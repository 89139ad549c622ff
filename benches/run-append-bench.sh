#!/usr/bin/env bash
# Append-throughput benchmark of the partition log, next to fio on the same
# disk. Installs fio if missing (bench hosts only), builds in release and runs
# `append-bench` with its defaults: io_uring and std × flush always and never,
# 4 GiB per run, 256 appenders, data under ./bench-data (removed at the
# end). Extra arguments go to append-bench, e.g.:
#   benches/run-append-bench.sh --bytes 1073741824 --backend uring --no-fio
# The markdown table goes to stdout, progress to stderr.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v fio >/dev/null 2>&1; then
    echo "fio not found: installing it (apt-get install -y fio)" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y fio >&2 || {
        $sudo apt-get update >&2 && $sudo apt-get install -y fio >&2
    } || echo "warning: could not install fio; the bench will skip the fio reference" >&2
fi

cargo build --release -p ringtail-benches >&2
target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}"
exec "$target_dir/release/append-bench" "$@"
