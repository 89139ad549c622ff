//! `ringtail --version`: the crate's version and the commit it was built
//! from, found by the build script's `git_commit::describe` (tested here
//! directly too, in a checkout and outside one).

#[path = "../build/git_commit.rs"]
mod git_commit;

use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");

/// `git rev-parse --short HEAD` in `dir`, if git and a repository are there.
fn git_head(dir: &Path) -> Option<String> {
    let output =
        Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    output.status.success().then(|| String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let output = Command::new(BINARY).arg("--version").output().unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    // Cargo builds the binary right before the tests, and reruns the build
    // script when HEAD moves, so it names the commit checked out now.
    let commit = match std::env::var("RINGTAIL_GIT_COMMIT") {
        Ok(named) if !named.trim().is_empty() => named.trim().to_owned(),
        _ => git_head(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|| {
            eprintln!("NOTE: no git checkout here; the version must say the commit is unknown");
            git_commit::UNKNOWN.to_owned()
        }),
    };
    assert_eq!(printed, format!("ringtail {} (commit {commit})\n", env!("CARGO_PKG_VERSION")));
    // -V is the same.
    let short = Command::new(BINARY).arg("-V").output().unwrap();
    assert_eq!(String::from_utf8(short.stdout).unwrap(), printed);
}

#[test]
fn describe_finds_the_checkout_and_what_to_watch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(head) = git_head(dir) else {
        eprintln!("SKIPPED: the source tree is not a git checkout (a tarball?); nothing to describe");
        return;
    };
    let found = git_commit::describe(dir);
    assert_eq!(found.commit, head);
    // HEAD is watched, and every watched path exists (cargo reruns a
    // script on every build for a path that does not).
    assert!(found.watch.iter().any(|p| p.ends_with("HEAD")), "{found:?}");
    assert!(found.watch.iter().all(|p| p.exists()), "{found:?}");
}

#[test]
fn outside_a_checkout_the_commit_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    if git_head(dir.path()).is_some() {
        eprintln!("SKIPPED: the temporary directory {} lies inside a git checkout", dir.path().display());
        return;
    }
    let found = git_commit::describe(dir.path());
    assert_eq!(found, git_commit::GitCommit { commit: "unknown".to_owned(), watch: Vec::new() });
}
