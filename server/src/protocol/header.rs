//! The request header's fixed prefix: api key, api version and correlation
//! id, 8 bytes in every header version. It is read by hand so that nothing
//! is decoded from a frame too short to hold it (kafka-protocol's own header
//! decoder panics on fewer than 4 bytes) and so that an unsupported version
//! is recognised before its header layout, which depends on the version, is
//! trusted.

/// api_key (i16) + api_version (i16) + correlation_id (i32).
pub const REQUEST_HEADER_BYTES_MIN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// The prefix of `frame`, or `None` if the frame is too short to have one.
pub fn peek_prefix(frame: &[u8]) -> Option<HeaderPrefix> {
    let prefix: &[u8; REQUEST_HEADER_BYTES_MIN] = frame.get(..REQUEST_HEADER_BYTES_MIN)?.try_into().ok()?;
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([prefix[0], prefix[1]]),
        api_version: i16::from_be_bytes([prefix[2], prefix[3]]),
        correlation_id: i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields() {
        let frame = [0, 18, 0, 3, 0x12, 0x34, 0x56, 0x78, 0xff];
        let p = peek_prefix(&frame).unwrap();
        assert_eq!(p, HeaderPrefix { api_key: 18, api_version: 3, correlation_id: 0x1234_5678 });
    }

    #[test]
    fn short_frames_have_no_prefix() {
        for len in 0..REQUEST_HEADER_BYTES_MIN {
            assert_eq!(peek_prefix(&vec![0xff; len]), None);
        }
    }
}
