//! Requests on the wire: encoding and checked decoding.

use super::{put_blob, put_count, put_string, DecodeError, Envelope, Reader, Request, CONFIGS_MAX};
use bytes::{BufMut, BytesMut};

pub fn encode_request(msg: &Envelope<Request>) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u64(msg.id);
    out.put_u64(msg.epoch);
    match &msg.body {
        Request::CreateTopic { name, partitions, configs } => {
            out.put_u8(1);
            put_string(&mut out, name);
            out.put_u32(*partitions);
            out.put_u16(configs.len() as u16);
            for (k, v) in configs {
                put_string(&mut out, k);
                put_string(&mut out, v);
            }
        }
        Request::DeleteTopic { name } => {
            out.put_u8(2);
            put_string(&mut out, name);
        }
        Request::Produce { topic, partition, acks, records } => {
            out.put_u8(3);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i8(*acks);
            put_blob(&mut out, records);
        }
        Request::Fetch { topic, partition, offset, max_bytes } => {
            out.put_u8(4);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i64(*offset);
            out.put_u32(*max_bytes);
        }
        Request::ListOffsets { topic, partition, timestamp } => {
            out.put_u8(5);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i64(*timestamp);
        }
        Request::FindCoordinator { group } => {
            out.put_u8(6);
            put_string(&mut out, group);
        }
        Request::JoinGroup { group, member_id, session_timeout_ms, rebalance_timeout_ms, metadata } => {
            out.put_u8(7);
            put_string(&mut out, group);
            put_string(&mut out, member_id);
            out.put_i32(*session_timeout_ms);
            out.put_i32(*rebalance_timeout_ms);
            put_blob(&mut out, metadata);
        }
        Request::SyncGroup { group, generation, member_id, assignments } => {
            out.put_u8(8);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
            put_count(&mut out, assignments.len());
            for (member, assignment) in assignments {
                put_string(&mut out, member);
                put_blob(&mut out, assignment);
            }
        }
        Request::Heartbeat { group, generation, member_id } => {
            out.put_u8(9);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
        }
        Request::LeaveGroup { group, member_id } => {
            out.put_u8(10);
            put_string(&mut out, group);
            put_string(&mut out, member_id);
        }
        Request::OffsetCommit { group, generation, member_id, offsets } => {
            out.put_u8(11);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
            put_count(&mut out, offsets.len());
            for (topic, partition, offset) in offsets {
                put_string(&mut out, topic);
                out.put_i32(*partition);
                out.put_i64(*offset);
            }
        }
        Request::OffsetFetch { group, partitions } => {
            out.put_u8(12);
            put_string(&mut out, group);
            put_count(&mut out, partitions.len());
            for (topic, partition) in partitions {
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
        }
    }
    out.to_vec()
}

pub fn decode_request(buf: &[u8]) -> Result<Envelope<Request>, DecodeError> {
    let mut r = Reader { buf };
    let (id, epoch) = (r.u64()?, r.u64()?);
    let body = match r.u8()? {
        1 => {
            let name = r.string()?;
            let partitions = r.u32()?;
            let count = r.u16()? as usize;
            if count > CONFIGS_MAX {
                return Err(DecodeError("too many configs"));
            }
            let mut configs = Vec::with_capacity(count);
            for _ in 0..count {
                configs.push((r.string()?, r.string()?));
            }
            Request::CreateTopic { name, partitions, configs }
        }
        2 => Request::DeleteTopic { name: r.string()? },
        3 => Request::Produce {
            topic: r.string()?,
            partition: r.u32()? as i32,
            acks: r.u8()? as i8,
            records: r.blob()?,
        },
        4 => Request::Fetch {
            topic: r.string()?,
            partition: r.u32()? as i32,
            offset: r.u64()? as i64,
            max_bytes: r.u32()?,
        },
        5 => Request::ListOffsets {
            topic: r.string()?,
            partition: r.u32()? as i32,
            timestamp: r.u64()? as i64,
        },
        6 => Request::FindCoordinator { group: r.string()? },
        7 => Request::JoinGroup {
            group: r.string()?,
            member_id: r.string()?,
            session_timeout_ms: r.i32()?,
            rebalance_timeout_ms: r.i32()?,
            metadata: r.blob()?,
        },
        8 => Request::SyncGroup {
            group: r.string()?,
            generation: r.i32()?,
            member_id: r.string()?,
            assignments: r.list(|r| Ok((r.string()?, r.blob()?)))?,
        },
        9 => Request::Heartbeat { group: r.string()?, generation: r.i32()?, member_id: r.string()? },
        10 => Request::LeaveGroup { group: r.string()?, member_id: r.string()? },
        11 => Request::OffsetCommit {
            group: r.string()?,
            generation: r.i32()?,
            member_id: r.string()?,
            offsets: r.list(|r| Ok((r.string()?, r.i32()?, r.i64()?)))?,
        },
        12 => {
            Request::OffsetFetch { group: r.string()?, partitions: r.list(|r| Ok((r.string()?, r.i32()?)))? }
        }
        _ => return Err(DecodeError("unknown request kind")),
    };
    r.end()?;
    Ok(Envelope { id, epoch, body })
}
