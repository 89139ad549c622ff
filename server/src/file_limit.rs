//! The process's open-file limit. Each partition keeps its segments' log
//! files open and each connection a socket, so the soft limit's common
//! default (1,024) runs out long before the broker's own bounds: at
//! start-up the soft limit is raised to the hard one, as Kafka's packaging
//! asks operators to, and a hard limit below what the configured bounds may
//! need is reported.

use crate::limits::CONNECTIONS_MAX;

/// Descriptors the broker needs besides partitions and connections (the
/// ring, listeners, metadata and checkpoint files, the runtime).
const FILES_BESIDES: u64 = 256;

/// The soft and hard limits after raising the soft one, or why they could
/// not be read or raised.
pub fn raise_open_file_limit() -> Result<(u64, u64), String> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!("getrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error()));
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads only the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(format!("setrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error()));
        }
        limit = raised;
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Files the configured bounds may hold open at once: one per partition
/// (its active segment) and connection, and the rest.
pub fn files_needed(partitions_max: u32) -> u64 {
    u64::from(partitions_max) + CONNECTIONS_MAX as u64 + FILES_BESIDES
}

/// Raises the limit and logs what came of it.
pub fn check_open_file_limit(partitions_max: u32) {
    let needed = files_needed(partitions_max);
    match raise_open_file_limit() {
        Ok((soft, _)) if soft < needed => tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit (ulimit -n, LimitNOFILE=) is below what --max-partitions and the connection limit \
             may use (each partition keeps a file per segment open); raise it or lower --max-partitions"
        ),
        Ok((soft, hard)) => tracing::info!(soft, hard, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raising leaves soft equal to hard, and doing it twice changes nothing.
    #[test]
    fn soft_limit_is_raised_to_hard() {
        let (soft, hard) = raise_open_file_limit().unwrap();
        assert_eq!(soft, hard);
        assert_eq!(raise_open_file_limit().unwrap(), (soft, hard));
        assert!(files_needed(10_000) > 10_000 + CONNECTIONS_MAX as u64);
    }
}
