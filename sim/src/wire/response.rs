//! Responses on the wire: encoding and checked decoding.

use super::{put_blob, put_count, put_string, DecodeError, Envelope, Reader, Response};
use bytes::{BufMut, BytesMut};

pub fn encode_response(msg: &Envelope<Response>) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u64(msg.id);
    out.put_u64(msg.epoch);
    match &msg.body {
        Response::Created => out.put_u8(1),
        Response::Deleted => out.put_u8(2),
        Response::Produced { base_offset, log_start_offset } => {
            out.put_u8(3);
            out.put_u64(*base_offset);
            out.put_u64(*log_start_offset);
        }
        Response::Fetched { records, high_watermark, log_start_offset } => {
            out.put_u8(4);
            put_blob(&mut out, records);
            out.put_u64(*high_watermark);
            out.put_u64(*log_start_offset);
        }
        Response::Offset { offset } => {
            out.put_u8(5);
            out.put_i64(*offset);
        }
        Response::Error { code, message, log_range } => {
            out.put_u8(6);
            out.put_i16(*code);
            put_string(&mut out, message);
            match log_range {
                Some((start, end)) => {
                    out.put_u8(1);
                    out.put_u64(*start);
                    out.put_u64(*end);
                }
                None => out.put_u8(0),
            }
        }
        Response::Coordinator { node_id } => {
            out.put_u8(7);
            out.put_i32(*node_id);
        }
        Response::Joined { error, generation, leader, member_id, members } => {
            out.put_u8(8);
            out.put_i16(*error);
            out.put_i32(*generation);
            put_string(&mut out, leader);
            put_string(&mut out, member_id);
            put_count(&mut out, members.len());
            for (member, metadata) in members {
                put_string(&mut out, member);
                put_blob(&mut out, metadata);
            }
        }
        Response::Synced { error, assignment } => {
            out.put_u8(9);
            out.put_i16(*error);
            put_blob(&mut out, assignment);
        }
        Response::GroupOk => out.put_u8(10),
        Response::Committed { errors } => {
            out.put_u8(11);
            put_count(&mut out, errors.len());
            for e in errors {
                out.put_i16(*e);
            }
        }
        Response::Offsets { offsets } => {
            out.put_u8(12);
            put_count(&mut out, offsets.len());
            for (topic, partition, offset, error) in offsets {
                put_string(&mut out, topic);
                out.put_i32(*partition);
                out.put_i64(*offset);
                out.put_i16(*error);
            }
        }
    }
    out.to_vec()
}

pub fn decode_response(buf: &[u8]) -> Result<Envelope<Response>, DecodeError> {
    let mut r = Reader { buf };
    let (id, epoch) = (r.u64()?, r.u64()?);
    let body = match r.u8()? {
        1 => Response::Created,
        2 => Response::Deleted,
        3 => Response::Produced { base_offset: r.u64()?, log_start_offset: r.u64()? },
        4 => Response::Fetched { records: r.blob()?, high_watermark: r.u64()?, log_start_offset: r.u64()? },
        5 => Response::Offset { offset: r.u64()? as i64 },
        6 => {
            let code = r.u16()? as i16;
            let message = r.string()?;
            let log_range = match r.u8()? {
                0 => None,
                1 => Some((r.u64()?, r.u64()?)),
                _ => return Err(DecodeError("bad log range flag")),
            };
            Response::Error { code, message, log_range }
        }
        7 => Response::Coordinator { node_id: r.i32()? },
        8 => Response::Joined {
            error: r.i16()?,
            generation: r.i32()?,
            leader: r.string()?,
            member_id: r.string()?,
            members: r.list(|r| Ok((r.string()?, r.blob()?)))?,
        },
        9 => Response::Synced { error: r.i16()?, assignment: r.blob()? },
        10 => Response::GroupOk,
        11 => Response::Committed { errors: r.list(|r| r.i16())? },
        12 => Response::Offsets { offsets: r.list(|r| Ok((r.string()?, r.i32()?, r.i64()?, r.i16()?)))? },
        _ => return Err(DecodeError("unknown response kind")),
    };
    r.end()?;
    Ok(Envelope { id, epoch, body })
}
