//! Build script: records the git commit the binary is built from, for
//! `ringtail --version`, as the compile-time variable RINGTAIL_BUILD_COMMIT.
//! Outside a git checkout (a source tarball) it is "unknown", unless the
//! packager names it in the environment variable RINGTAIL_GIT_COMMIT.

#[path = "build/git_commit.rs"]
mod git_commit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/git_commit.rs");
    println!("cargo:rerun-if-env-changed=RINGTAIL_GIT_COMMIT");
    let commit = match std::env::var("RINGTAIL_GIT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => {
            let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
            let found = git_commit::describe(std::path::Path::new(&dir));
            // Rerun after a commit or a checkout.
            for path in &found.watch {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            found.commit
        }
    };
    println!("cargo:rustc-env=RINGTAIL_BUILD_COMMIT={commit}");
}
