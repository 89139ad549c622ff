//! The memory limit and usage read from fake `/proc` and `/sys/fs/cgroup`
//! trees: cgroup v2 (limits at several levels), v1 on a hybrid host,
//! "max" and v1's huge "no limit", no cgroup files at all.

use super::*;
use crate::memory::log_cache_bytes_for;
use std::fs;

const GIB: u64 = 1 << 30;

/// A fake host of `mem_total` bytes (MemAvailable a quarter of it) whose
/// process is in the cgroups `cgroup_lines` name.
struct FakeHost {
    dir: tempfile::TempDir,
}

impl FakeHost {
    fn new(mem_total: u64, cgroup_lines: Option<&str>) -> FakeHost {
        let host = FakeHost { dir: tempfile::tempdir().unwrap() };
        let meminfo = format!(
            "MemTotal:       {} kB\nMemFree:        1 kB\nMemAvailable:   {} kB\n",
            mem_total / 1024,
            mem_total / 4 / 1024
        );
        host.write("proc/meminfo", &meminfo);
        host.write("proc/self/statm", "1000 250 100 1 0 300 0\n");
        if let Some(lines) = cgroup_lines {
            host.write("proc/self/cgroup", lines);
        }
        fs::create_dir_all(host.dir.path().join("cgroup")).unwrap();
        host
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn files(&self) -> MemoryFiles {
        MemoryFiles::at(self.dir.path().join("proc"), self.dir.path().join("cgroup"))
    }
}

#[test]
fn cgroup_v2_limit_bounds_the_host_memory() {
    let host = FakeHost::new(64 * GIB, Some("0::/kubepods/pod1/ctr\n"));
    host.write("cgroup/cgroup.controllers", "cpu memory\n");
    // The pod's limit binds the container, whose own is unset.
    host.write("cgroup/kubepods/pod1/memory.max", &format!("{}\n", 2 * GIB));
    host.write("cgroup/kubepods/pod1/memory.current", &format!("{}\n", GIB + GIB / 2));
    host.write("cgroup/kubepods/pod1/memory.stat", &format!("anon 1\ninactive_file {}\n", GIB / 2));
    host.write("cgroup/kubepods/pod1/ctr/memory.max", "max\n");
    host.write("cgroup/kubepods/pod1/ctr/memory.high", "max\n");
    host.write("cgroup/kubepods/pod1/ctr/memory.current", "100\n");
    let files = host.files();
    assert_eq!(files.limit_bytes(), Some(2 * GIB));
    assert_eq!(log_cache_bytes_for(&files), (GIB / 2) as usize, "a quarter of the container's 2 GiB");
    let pod = MemoryReading { scope: Scope::Cgroup, limit_bytes: 2 * GIB, used_bytes: GIB };
    assert_eq!(files.tightest(), Some(pod), "charge minus inactive file pages");
    assert_eq!(files.readings().len(), 2, "the host and the pod; the container sets no limit");

    // memory.high, where the kernel starts reclaiming, binds below max.
    host.write("cgroup/kubepods/pod1/ctr/memory.high", &format!("{}\n", GIB));
    assert_eq!(files.limit_bytes(), Some(GIB));
}

#[test]
fn cgroup_v1_limit_on_a_hybrid_host() {
    let host = FakeHost::new(64 * GIB, Some("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n"));
    host.write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    host.write("cgroup/memory/docker/abc/memory.limit_in_bytes", &format!("{}\n", 3 * GIB));
    host.write("cgroup/memory/docker/abc/memory.usage_in_bytes", &format!("{}\n", 2 * GIB));
    host.write(
        "cgroup/memory/docker/abc/memory.stat",
        &format!("cache 5\ninactive_file 7\ntotal_inactive_file {}\n", GIB),
    );
    host.write("cgroup/unified/cgroup.procs", "1\n");
    let files = host.files();
    assert_eq!(files.limit_bytes(), Some(3 * GIB));
    assert_eq!(log_cache_bytes_for(&files), (3 * GIB / 4) as usize);
    let docker = MemoryReading { scope: Scope::Cgroup, limit_bytes: 3 * GIB, used_bytes: GIB };
    assert_eq!(files.tightest(), Some(docker));
}

/// Without its own cgroup namespace, a container's `/proc/self/cgroup`
/// names the host's path, and its limit is at the mount's root.
#[test]
fn a_path_missing_under_the_mount_reads_the_root() {
    let host = FakeHost::new(64 * GIB, Some("4:memory:/docker/abc\n"));
    host.write("cgroup/memory/memory.limit_in_bytes", &format!("{}\n", 2 * GIB));
    assert_eq!(host.files().limit_bytes(), Some(2 * GIB));
    let escaping = FakeHost::new(64 * GIB, Some("0::/../../elsewhere\n"));
    escaping.write("cgroup/cgroup.controllers", "memory\n");
    escaping.write("cgroup/memory.max", &format!("{}\n", GIB));
    assert_eq!(escaping.files().limit_bytes(), Some(GIB), "no climbing out of the root");
}

#[test]
fn max_and_huge_limits_mean_none() {
    let host = FakeHost::new(8 * GIB, Some("0::/service\n"));
    host.write("cgroup/cgroup.controllers", "memory\n");
    host.write("cgroup/service/memory.max", "max\n");
    host.write("cgroup/service/memory.high", "max\n");
    host.write("cgroup/service/memory.current", "12345\n");
    let files = host.files();
    assert_eq!(files.limit_bytes(), Some(8 * GIB), "the host's memory");
    assert_eq!(log_cache_bytes_for(&files), (2 * GIB) as usize);
    let whole = MemoryReading { scope: Scope::Host, limit_bytes: 8 * GIB, used_bytes: 6 * GIB };
    assert_eq!(files.readings(), vec![whole], "MemTotal minus MemAvailable");

    host.write("cgroup/service/memory.max", "9223372036854771712\n");
    assert_eq!(files.limit_bytes(), Some(8 * GIB));
}

#[test]
fn no_cgroup_files_fall_back_to_the_host() {
    let host = FakeHost::new(16 * GIB, None);
    let files = host.files();
    assert_eq!(files.limit_bytes(), Some(16 * GIB));
    assert_eq!(log_cache_bytes_for(&files), (4 * GIB) as usize);
    assert_eq!(files.resident_bytes(), Some(250 * page_bytes()));
    let nothing = MemoryFiles::at(host.dir.path().join("none"), host.dir.path().join("none"));
    assert_eq!(nothing.limit_bytes(), None);
    assert_eq!(log_cache_bytes_for(&nothing), 1 << 30, "the fallback");
    assert!(nothing.readings().is_empty());
}
