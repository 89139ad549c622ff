//! An input decoded into its mode and frames, for `examples/show.rs`.

use super::MODE_STREAM;
use bytes::Bytes;
use ringtail_server::limits::Limits;
use ringtail_server::net::frame::body_length;
use ringtail_server::protocol::request::{parse, Parsed};

/// `data` as a list of frames, for `examples/show.rs`.
pub fn describe(data: &[u8]) -> String {
    let Some((&mode, rest)) = data.split_first() else { return "empty input".into() };
    let limits = Limits::default();
    let mut out = format!("mode {mode:#04x}\n");
    let frames: Vec<Bytes> = if mode & MODE_STREAM == 0 {
        vec![Bytes::copy_from_slice(rest)]
    } else {
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(prefix) = rest.get(at..at + 4) {
            let len = body_length(prefix.try_into().unwrap(), limits.frame_size_bytes_max);
            match len {
                Ok(len) if at + 4 + len <= rest.len() => {
                    frames.push(Bytes::copy_from_slice(&rest[at + 4..at + 4 + len]));
                    at += 4 + len;
                }
                Ok(len) => {
                    out += &format!("frame of {len} bytes, {} left: truncated\n", rest.len() - at - 4);
                    break;
                }
                Err(e) => {
                    out += &format!("refused frame: {e}\n");
                    break;
                }
            }
        }
        frames
    };
    for frame in frames {
        match parse(frame, limits.request_array_elements_max) {
            Ok(Parsed::Request(r)) => out += &format!("{:?} {:?}\n", r.header, r.body),
            Ok(other) => out += &format!("{other:?}\n"),
            Err(e) => out += &format!("refused: {e}\n"),
        }
    }
    out
}
