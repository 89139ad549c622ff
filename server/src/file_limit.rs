//! The process's open-file limit. Each partition keeps its active segment's
//! log file open, sealed segments' files are open up to
//! `--open-segments-max`, and each connection holds a socket, so the soft
//! limit's common
//! default (1,024) runs out long before the broker's own bounds: at
//! start-up the soft limit is raised to the hard one, as Kafka's packaging
//! asks operators to, and a hard limit below what the configured bounds may
//! need is reported.

use crate::limits::CONNECTIONS_MAX;
use ringtail_engine::broker::TopicLimits;

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
/// (its active segment), the sealed segments' bound, one per connection,
/// and the rest.
pub fn files_needed(limits: &TopicLimits) -> u64 {
    u64::from(limits.partitions_max)
        + limits.open_segment_files_max as u64
        + CONNECTIONS_MAX as u64
        + FILES_BESIDES
}

/// Raises the limit and logs what came of it.
pub fn check_open_file_limit(limits: &TopicLimits) {
    let needed = files_needed(limits);
    match raise_open_file_limit() {
        Ok((soft, _)) if soft < needed => tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit (ulimit -n, LimitNOFILE=) is below what --max-partitions, --open-segments-max and \
             the connection limit may use; raise it or lower those"
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
        let limits = TopicLimits::default();
        let bounded = u64::from(limits.partitions_max) + limits.open_segment_files_max as u64;
        assert!(files_needed(&limits) > bounded + CONNECTIONS_MAX as u64);
    }
}
