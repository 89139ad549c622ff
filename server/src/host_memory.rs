//! How much memory this process may use, and how much of it is in use: the
//! host's (`/proc/meminfo`) and its cgroup's (v2 `memory.max` and
//! `memory.high`, v1 `memory.limit_in_bytes`). The roots of the files are
//! injectable (`MemoryFiles::at`), so tests point them at a fake tree.
//!
//! A container's limit does not show in `/proc/meminfo`: a broker sizing its
//! cache from MemTotal in a 2 GiB container on a 64 GiB host would aim for
//! 16 GiB and be OOM-killed. Every ancestor's limit binds as well (a pod's
//! above its container's), so each level from the process's cgroup up to
//! the hierarchy's root is read. Where `/proc/self/cgroup` names a path
//! the mount does not have (a container without its own cgroup namespace
//! sees its cgroup as the mount's root), only the root is read.
//!
//! Usage is what the kernel would not simply drop under pressure: the
//! cgroup's charge minus its inactive file pages (as the kubelet and Docker
//! count a working set), or on the host MemTotal minus MemAvailable.

use std::path::{Component, Path, PathBuf};

/// Limits at or above this mean "none": cgroup v1 reports no limit as
/// 9223372036854771712 (the page counter's maximum), and runtimes write
/// other huge values.
const UNLIMITED_BYTES_MIN: u64 = 1 << 60;

/// Where the kernel's memory files are.
#[derive(Clone, Debug)]
pub struct MemoryFiles {
    proc_dir: PathBuf,
    cgroup_dir: PathBuf,
}

/// One bound on the process's memory and what counts against it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReading {
    pub scope: Scope,
    pub limit_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole machine: MemTotal, MemTotal - MemAvailable.
    Host,
    /// A cgroup (the process's or an ancestor) with a memory limit.
    Cgroup,
}

impl MemoryReading {
    pub fn headroom_bytes(&self) -> u64 {
        self.limit_bytes.saturating_sub(self.used_bytes)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl MemoryFiles {
    /// This host's: `/proc` and `/sys/fs/cgroup`.
    pub fn host() -> MemoryFiles {
        MemoryFiles::at("/proc", "/sys/fs/cgroup")
    }

    pub fn at(proc_dir: impl Into<PathBuf>, cgroup_dir: impl Into<PathBuf>) -> MemoryFiles {
        MemoryFiles { proc_dir: proc_dir.into(), cgroup_dir: cgroup_dir.into() }
    }

    /// The memory this process may use: the smaller of the host's and the
    /// tightest cgroup limit. `None` if neither can be read.
    pub fn limit_bytes(&self) -> Option<u64> {
        let host = self.meminfo_bytes("MemTotal:");
        let cgroup = self.cgroup_levels().iter().filter_map(|(v, dir)| limit_at(*v, dir)).min();
        host.into_iter().chain(cgroup).min()
    }

    /// Every bound that applies, with its usage now: the host's, then each
    /// cgroup level with a limit, innermost first.
    pub fn readings(&self) -> Vec<MemoryReading> {
        let mut out = Vec::new();
        if let (Some(total), Some(available)) =
            (self.meminfo_bytes("MemTotal:"), self.meminfo_bytes("MemAvailable:"))
        {
            out.push(MemoryReading {
                scope: Scope::Host,
                limit_bytes: total,
                used_bytes: total.saturating_sub(available),
            });
        }
        for (version, dir) in self.cgroup_levels() {
            if let (Some(limit), Some(used)) = (limit_at(version, &dir), used_at(version, &dir)) {
                out.push(MemoryReading { scope: Scope::Cgroup, limit_bytes: limit, used_bytes: used });
            }
        }
        out
    }

    /// The reading with the least headroom, if any.
    pub fn tightest(&self) -> Option<MemoryReading> {
        self.readings().into_iter().min_by_key(MemoryReading::headroom_bytes)
    }

    /// The process's resident set (`/proc/self/statm`, second field).
    pub fn resident_bytes(&self) -> Option<u64> {
        let statm = std::fs::read_to_string(self.proc_dir.join("self/statm")).ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages.saturating_mul(page_bytes()))
    }

    fn meminfo_bytes(&self, key: &str) -> Option<u64> {
        let meminfo = std::fs::read_to_string(self.proc_dir.join("meminfo")).ok()?;
        let kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib.saturating_mul(1024))
    }

    /// The directories of the process's memory cgroups, each level up to
    /// its hierarchy's root, innermost first (v2 and, on a hybrid host, v1).
    fn cgroup_levels(&self) -> Vec<(Version, PathBuf)> {
        let Ok(text) = std::fs::read_to_string(self.proc_dir.join("self/cgroup")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (version, mount) = if id == "0" && controllers.is_empty() {
                (Version::V2, self.v2_mount())
            } else if controllers.split(',').any(|c| c == "memory") {
                (Version::V1, self.cgroup_dir.join("memory"))
            } else {
                continue;
            };
            out.extend(levels(&mount, path).into_iter().map(|dir| (version, dir)));
        }
        out
    }

    /// A pure v2 host mounts the hierarchy at the cgroup directory itself; a
    /// hybrid one under `unified`.
    fn v2_mount(&self) -> PathBuf {
        if self.cgroup_dir.join("cgroup.controllers").exists() {
            self.cgroup_dir.clone()
        } else {
            self.cgroup_dir.join("unified")
        }
    }
}

/// `path`'s directory under `mount` and each ancestor up to `mount`,
/// innermost first; only `mount` when the path is not there (or climbs out
/// of the namespace's root with `..`).
fn levels(mount: &Path, path: &str) -> Vec<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return vec![mount.to_path_buf()];
    }
    let mut dir = mount.join(relative);
    if !dir.is_dir() {
        return vec![mount.to_path_buf()];
    }
    let mut out = vec![dir.clone()];
    while dir != mount && dir.pop() {
        out.push(dir.clone());
    }
    out
}

/// The limit set at one level: the smaller of v2's `memory.high` (where
/// the kernel starts throttling and reclaiming) and `memory.max`.
fn limit_at(version: Version, dir: &Path) -> Option<u64> {
    match version {
        Version::V2 => ["memory.max", "memory.high"].iter().filter_map(|f| read_limit(&dir.join(f))).min(),
        Version::V1 => read_limit(&dir.join("memory.limit_in_bytes")),
    }
}

fn used_at(version: Version, dir: &Path) -> Option<u64> {
    let (charge_file, inactive_keys): (&str, &[&str]) = match version {
        Version::V2 => ("memory.current", &["inactive_file"]),
        Version::V1 => ("memory.usage_in_bytes", &["total_inactive_file", "inactive_file"]),
    };
    let charge = read_u64(&dir.join(charge_file))?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let inactive = inactive_keys.iter().find_map(|key| stat_value(&stat, key)).unwrap_or(0);
    Some(charge.saturating_sub(inactive))
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A limit file's value: `None` for "max", unreadable, or absurdly large.
fn read_limit(path: &Path) -> Option<u64> {
    read_u64(path).filter(|&v| v < UNLIMITED_BYTES_MIN)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn page_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

#[cfg(test)]
mod tests;
