//! Planted bugs for the simulator's canaries (`sim/canaries`): each is one
//! known bug the simulator must catch. They are compiled in only with the
//! `canaries` feature and switched on by name when the simulator starts
//! (`Canary::activate`), so one build serves every canary. Without the
//! feature `on` is a constant `false` and the bugs compile away.

/// The planted bugs, by the names `sim/canaries` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canary {
    /// flush=always acknowledges once written, without the fsync.
    AckBeforeFsync,
    /// Recovery takes a batch whose CRC fails as valid and scans on.
    RecoverPastBadCrc,
    /// Recovery does not truncate the torn tail it found.
    SkipTornTailCut,
    /// The coordinator accepts offset commits from any member and generation.
    GroupStaleCommit,
    /// OffsetCommit is acknowledged even when its record was not persisted.
    GroupAckUnpersisted,
    /// A retried idempotent batch is appended again.
    IdempotentDedupOff,
    /// Under flush=always the high watermark follows the log end, not the
    /// fsynced offset.
    HwAheadOfFsync,
    /// A quorum frame holding only a vote or term is never written.
    QuorumVoteUnpersisted,
    /// A controller leader applies its entries as it appends them.
    QuorumCommitWithoutQuorum,
    /// A broker following the image keeps the topics it deleted.
    FollowKeepsDeleted,
    /// A broker following the image never takes its credentials, ACLs
    /// and quotas.
    FollowSkipsSecurity,
    /// A partition leader's high watermark follows its own log end, not
    /// the ISR's.
    ReplicationHwWithoutIsr,
    /// A follower does not truncate the tail where it diverged from its
    /// leader.
    ReplicationSkipTruncation,
    /// A fenced leader's successor is any live replica, in the ISR or not.
    ReplicationLeaderOutsideIsr,
    /// A leader change keeps the leader epoch.
    ReplicationEpochNotBumped,
}

impl Canary {
    pub const ALL: [Canary; 15] = [
        Canary::AckBeforeFsync,
        Canary::RecoverPastBadCrc,
        Canary::SkipTornTailCut,
        Canary::GroupStaleCommit,
        Canary::GroupAckUnpersisted,
        Canary::IdempotentDedupOff,
        Canary::HwAheadOfFsync,
        Canary::QuorumVoteUnpersisted,
        Canary::QuorumCommitWithoutQuorum,
        Canary::FollowKeepsDeleted,
        Canary::FollowSkipsSecurity,
        Canary::ReplicationHwWithoutIsr,
        Canary::ReplicationSkipTruncation,
        Canary::ReplicationLeaderOutsideIsr,
        Canary::ReplicationEpochNotBumped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canary::AckBeforeFsync => "canary-ack-before-fsync",
            Canary::RecoverPastBadCrc => "canary-recover-past-bad-crc",
            Canary::SkipTornTailCut => "canary-skip-torn-tail-cut",
            Canary::GroupStaleCommit => "canary-group-stale-commit",
            Canary::GroupAckUnpersisted => "canary-group-ack-unpersisted",
            Canary::IdempotentDedupOff => "canary-idempotent-dedup-off",
            Canary::HwAheadOfFsync => "canary-hw-ahead-of-fsync",
            Canary::QuorumVoteUnpersisted => "canary-quorum-vote-unpersisted",
            Canary::QuorumCommitWithoutQuorum => "canary-quorum-commit-without-quorum",
            Canary::FollowKeepsDeleted => "canary-quorum-follow-keeps-deleted",
            Canary::FollowSkipsSecurity => "canary-quorum-follow-skips-security",
            Canary::ReplicationHwWithoutIsr => "canary-replication-hw-without-isr",
            Canary::ReplicationSkipTruncation => "canary-replication-skip-truncation",
            Canary::ReplicationLeaderOutsideIsr => "canary-replication-leader-outside-isr",
            Canary::ReplicationEpochNotBumped => "canary-replication-epoch-not-bumped",
        }
    }

    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether this planted bug is switched on.
    #[inline]
    pub fn on(self) -> bool {
        #[cfg(feature = "canaries")]
        {
            active::get() == Some(self)
        }
        #[cfg(not(feature = "canaries"))]
        {
            false
        }
    }

    /// Switches this bug on for the rest of the process (the simulator
    /// does, before any seed runs, when given `--canary NAME`).
    #[cfg(feature = "canaries")]
    pub fn activate(self) {
        active::set(self);
    }

    /// Whether this build holds the planted bugs at all.
    pub const COMPILED: bool = cfg!(feature = "canaries");
}

#[cfg(feature = "canaries")]
mod active {
    use super::Canary;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// 0: none; otherwise 1 + the canary's index in `Canary::ALL`.
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);

    pub fn get() -> Option<Canary> {
        ACTIVE.load(Ordering::Relaxed).checked_sub(1).map(|i| Canary::ALL[i])
    }

    pub fn set(canary: Canary) {
        let index = Canary::ALL.iter().position(|c| *c == canary).expect("every canary is in ALL");
        ACTIVE.store(index + 1, Ordering::Relaxed);
    }
}
