//! Which git commit a build is made from, for `ringtail --version`. Shared
//! by the build script (`build.rs`) and its test (`tests/build_info.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the version says when the commit cannot be known: a source tarball
/// without `.git`, or no `git` on the build host.
pub const UNKNOWN: &str = "unknown";

/// The commit a build is made from, and the files whose change means it
/// may be another one (for cargo's `rerun-if-changed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommit {
    /// `git rev-parse --short HEAD`, or `UNKNOWN`.
    pub commit: String,
    /// Files and directories that exist: HEAD, the branch it names (or,
    /// while the branch is only in `packed-refs`, the directory its loose
    /// ref will be written to), and `packed-refs`.
    pub watch: Vec<PathBuf>,
}

/// The commit checked out in the repository holding `dir`.
pub fn describe(dir: &Path) -> GitCommit {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        let text = text.trim();
        (output.status.success() && !text.is_empty()).then(|| text.to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return GitCommit { commit: UNKNOWN.to_owned(), watch: Vec::new() };
    };
    // Relative paths from git are relative to `dir` (`-C`).
    let absolute = |path: String| dir.join(path);
    let mut watch = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(absolute) {
        watch.push(git_dir.join("HEAD"));
    }
    // A linked worktree keeps its HEAD apart and its refs in the common dir.
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(absolute) {
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let loose = common.join(&branch);
            match loose.parent() {
                Some(parent) if !loose.exists() => watch.push(parent.to_path_buf()),
                _ => watch.push(loose),
            }
        }
        watch.push(common.join("packed-refs"));
    }
    watch.retain(|path| path.exists());
    GitCommit { commit, watch }
}
