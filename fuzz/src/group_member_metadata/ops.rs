//! The operations, decoded from the fuzz input, and the member metadata
//! and assignments they carry.

use bytes::{BufMut, Bytes, BytesMut};
use ringtail_engine::group::MEMBER_BYTES_MAX;

/// What an op does: the op byte's low three bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Join,
    Sync,
    Heartbeat,
    Leave,
    Commit,
    Tick,
    /// DeleteGroups, or OffsetDelete with flag bit 0.
    Delete,
    /// Replay the log into a new shard and compare; flag bit 0: the new
    /// shard takes over (the old one is unloaded, as at a failover).
    Reload,
}

/// One operation: kind, flags (the op byte's high five bits), and three
/// parameter bytes (absent bytes read as zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub flags: u8,
    pub a: u8,
    pub b: u8,
    pub c: u8,
}

const KINDS: [OpKind; 8] = [
    OpKind::Join,
    OpKind::Sync,
    OpKind::Heartbeat,
    OpKind::Leave,
    OpKind::Commit,
    OpKind::Tick,
    OpKind::Delete,
    OpKind::Reload,
];

impl Op {
    pub fn decode(input: &[u8]) -> Option<(Op, &[u8])> {
        let (&op, rest) = input.split_first()?;
        let take = rest.len().min(3);
        let mut p = [0u8; 3];
        p[..take].copy_from_slice(&rest[..take]);
        let op = Op { kind: KINDS[usize::from(op & 7)], flags: op >> 3, a: p[0], b: p[1], c: p[2] };
        Some((op, &rest[take..]))
    }

    pub fn encode(&self) -> [u8; 4] {
        let kind = KINDS.iter().position(|k| *k == self.kind).unwrap() as u8;
        [kind | self.flags << 3, self.a, self.b, self.c]
    }

    pub fn new(kind: OpKind, flags: u8, a: u8, b: u8, c: u8) -> Op {
        Op { kind, flags, a, b, c }
    }

    /// The client slot (0-3) the op speaks for.
    pub fn slot(&self) -> usize {
        usize::from(self.a & 3)
    }

    /// The group (0-1) it names.
    pub fn group(&self) -> usize {
        usize::from(self.a >> 2 & 1)
    }
}

/// Sizes of member metadata and assignments: three bits of a parameter.
pub const SIZES: [usize; 8] =
    [0, 12, 300, 4096, 400 * 1024, 700 * 1024, MEMBER_BYTES_MAX, MEMBER_BYTES_MAX + 1];

/// A size from three bits.
pub fn size(bits: u8) -> usize {
    SIZES[usize::from(bits & 7)]
}

/// Member metadata of exactly `len` bytes (when it can hold one): a
/// ConsumerProtocolSubscription v0 of topics `t0`..`t{topics-1}` whose user
/// data pads it, when `consumer`; else opaque bytes of `fill`.
pub fn metadata(len: usize, consumer: bool, topics: u8, fill: u8) -> Bytes {
    let topics = usize::from(topics % 4);
    let mut b = BytesMut::with_capacity(len);
    let fixed = 2 + 4 + topics * 4 + 4;
    if consumer && len >= fixed {
        b.put_i16(0);
        b.put_i32(topics as i32);
        for t in 0..topics {
            b.put_i16(2);
            b.put_slice(format!("t{t}").as_bytes());
        }
        b.put_i32((len - fixed) as i32);
    }
    b.resize(len, fill);
    b.freeze()
}
