#!/usr/bin/env bash
# Bounded fuzzing, for CI: each fuzz target runs for FUZZ_SECONDS (default 60)
# from the checked-in seeds. Skips (exit 0) when cargo-fuzz is not installed
# (`cargo install cargo-fuzz --locked`, ~90 s). Stable Rust: `-s none`.
#
# Engine bugs listed in regressions/known-failures.txt are tolerated (see
# src/known_bugs.rs), so that the time goes to finding new ones; set
# RINGTAIL_FUZZ_TOLERATE= (empty) to tolerate none. New inputs found go to a
# temporary directory, not to corpus/. A crash exits 1 and names the input
# (under fuzz/artifacts/TARGET/): reproduce it with
#   cd fuzz && cargo fuzz run -s none TARGET artifacts/TARGET/crash-...
# and keep it as fuzz/regressions/TARGET/<what-it-shows>.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run-bounded.sh: cargo-fuzz is not installed; skipping bounded fuzzing"
    exit 0
fi
# cargo-fuzz finds its binaries under fuzz/target.
unset CARGO_TARGET_DIR
if [ -z "${RINGTAIL_FUZZ_TOLERATE+set}" ]; then
    RINGTAIL_FUZZ_TOLERATE="$(grep -v '^#' regressions/known-failures.txt | sed -n 's/^[^#]*#//p' | tr ',' '\n' \
        | tr -d ' ' | grep -E '^[a-z-]+$' | sort -u | paste -sd, - || true)"
fi
export RINGTAIL_FUZZ_TOLERATE
echo "fuzz/run-bounded.sh: ${seconds} s per target; tolerating known bugs: ${RINGTAIL_FUZZ_TOLERATE:-none}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in log_recovery segment_bytes record_batch kafka_request; do
    mkdir -p "$work/$target"
    cp corpus/"$target"/* "$work/$target"/
    echo "=== $target"
    if ! cargo fuzz run -s none "$target" "$work/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len=8192 -print_final_stats=1 2>&1 | grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse)|^"|^######'; then
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run-bounded.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "fuzz/run-bounded.sh: no crashes"
