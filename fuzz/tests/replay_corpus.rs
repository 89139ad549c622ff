//! Replays every checked-in fuzz input through its target, without
//! cargo-fuzz and on stable: `fuzz/corpus/<target>/` (seeds and interesting
//! inputs) and `fuzz/regressions/<target>/` (every crash ever found).
//!
//! Inputs listed in `fuzz/regressions/known-failures.txt` reproduce engine
//! bugs not yet fixed: they must still fail (panic). Once one passes, the bug
//! is fixed: delete its line, and the input guards against the bug's return.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[global_allocator]
static ALLOC: ringtail_fuzz::LimitAlloc = ringtail_fuzz::LimitAlloc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/file` names from known-failures.txt (`#` starts a comment).
fn known_failures() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("regressions/known-failures.txt")).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

thread_local! {
    /// The input being replayed on this thread, for the panic message.
    static CURRENT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// One message per panic, naming the input (a known failure is expected to
/// panic), without a backtrace.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            CURRENT.with(|c| eprintln!("{}: {info}", c.borrow()));
        }))
    });
}

fn replay(target: &str, run: fn(&[u8])) {
    quiet_panics();
    let known = known_failures();
    let mut replayed = 0;
    let mut failures = Vec::new();
    for kind in ["corpus", "regressions"] {
        for path in inputs(&root().join(kind).join(target)) {
            let name = format!("{target}/{}", path.file_name().unwrap().to_string_lossy());
            let data = std::fs::read(&path).unwrap();
            CURRENT.with(|c| *c.borrow_mut() = name.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| run(&data)));
            replayed += 1;
            match (outcome.is_ok(), known.contains(&name)) {
                (true, false) | (false, true) => {}
                (false, false) => failures.push(format!("{} fails", path.display())),
                (true, true) => failures.push(format!(
                    "{} passes now: remove `{name}` from regressions/known-failures.txt",
                    path.display()
                )),
            }
        }
    }
    eprintln!("{target}: replayed {replayed} inputs");
    assert!(replayed > 0, "no inputs for {target}: the corpus is missing");
    assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
}

#[test]
fn log_recovery_corpus() {
    replay("log_recovery", ringtail_fuzz::log_recovery::run);
}

#[test]
fn segment_bytes_corpus() {
    replay("segment_bytes", ringtail_fuzz::segment_bytes::run);
}

#[test]
fn record_batch_corpus() {
    replay("record_batch", ringtail_fuzz::record_batch::run);
}

#[test]
fn kafka_request_corpus() {
    replay("kafka_request", ringtail_fuzz::kafka_request::run);
}

#[test]
fn produce_batches_corpus() {
    replay("produce_batches", ringtail_fuzz::produce_batches::run);
}

#[test]
fn group_member_metadata_corpus() {
    replay("group_member_metadata", ringtail_fuzz::group_member_metadata::run);
}

/// Every target listed in the library has a test above.
#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = ringtail_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "log_recovery",
            "segment_bytes",
            "record_batch",
            "kafka_request",
            "produce_batches",
            "group_member_metadata"
        ]
    );
}
