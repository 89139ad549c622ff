#!/usr/bin/env bash
# Bounded fuzzing, for CI: each fuzz target runs for FUZZ_SECONDS (default 60;
# run-tests passes 30 in CI) from the checked-in seeds. Stable Rust, no
# sanitizer (`-s none`): CI machines have no nightly toolchain.
#
# cargo-fuzz: used from PATH or from $HOME/.cache/ringtail/tools/bin. When
# it is in neither, CI (CI=true) installs it there from crates.io (about a
# minute, once per machine: the cache is outside the clone); elsewhere the
# script skips (exit 0) and says how to install it.
#
# The fuzz build (release, with coverage instrumentation: its own flags, so
# its own target dir) goes to $HOME/.cache/ringtail/target-cargo-fuzz (or
# RINGTAIL_FUZZ_TARGET_DIR), outside the clone, so that a fresh clone only
# rebuilds what changed (engine and server, with one codegen unit: the
# build time is printed; the README's fuzzing section has measurements).
#
# Engine bugs listed in regressions/known-failures.txt are tolerated (see
# src/known_bugs.rs), so that the time goes to finding new ones; set
# RINGTAIL_FUZZ_TOLERATE= (empty) to tolerate none. New inputs found go to a
# temporary directory, not to corpus/. A crash exits 1 and names the input
# (under fuzz/artifacts/TARGET/): reproduce it with the build this made
#   cd fuzz && cargo fuzz run -s none --target-dir ~/.cache/ringtail/target-cargo-fuzz \
#       TARGET artifacts/TARGET/crash-...
# and keep it as fuzz/regressions/TARGET/<what-it-shows> (see the README).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
targets=(log_recovery segment_bytes record_batch kafka_request produce_batches group_member_metadata)
tools="$HOME/.cache/ringtail/tools"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ "${CI:-}" != true ]; then
        echo "fuzz/run-bounded.sh: cargo-fuzz is not installed; skipping bounded fuzzing"
        echo "  (cargo install --locked --root \"$tools\" cargo-fuzz, or run with CI=true)"
        exit 0
    fi
    echo "fuzz/run-bounded.sh: installing cargo-fuzz into $tools"
    cargo install --locked --root "$tools" --version "${CARGO_FUZZ_VERSION:-0.13.2}" cargo-fuzz
fi
target_dir="${RINGTAIL_FUZZ_TARGET_DIR:-$HOME/.cache/ringtail/target-cargo-fuzz}"
if [ -z "${RINGTAIL_FUZZ_TOLERATE+set}" ]; then
    RINGTAIL_FUZZ_TOLERATE="$(grep -v '^#' regressions/known-failures.txt | sed -n 's/^[^#]*#//p' | tr ',' '\n' \
        | tr -d ' ' | grep -E '^[a-z-]+$' | sort -u | paste -sd, - || true)"
fi
export RINGTAIL_FUZZ_TOLERATE
echo "fuzz/run-bounded.sh: ${seconds} s per target; tolerating known bugs: ${RINGTAIL_FUZZ_TOLERATE:-none}"
start=$SECONDS
cargo fuzz build -s none --target-dir "$target_dir"
echo "fuzz/run-bounded.sh: fuzz build took $((SECONDS - start)) s"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    cp corpus/"$target"/* "$work/$target"/
    echo "=== $target"
    if ! cargo fuzz run -s none --target-dir "$target_dir" "$target" "$work/$target" -- \
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
