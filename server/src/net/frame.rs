//! Kafka's framing: every request and response is a 4-byte big-endian
//! signed length followed by that many bytes.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::header::REQUEST_HEADER_BYTES_MIN;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("frame of {0} bytes cannot hold a request header")]
    TooShort(usize),
    #[error("connection closed inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The body length announced by a length prefix, checked against the
/// limits before anything is allocated for it.
pub fn body_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    let len = usize::try_from(len).map_err(|_| FrameError::Negative(len))?;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len < REQUEST_HEADER_BYTES_MIN {
        return Err(FrameError::TooShort(len));
    }
    Ok(len)
}

/// Reads a length prefix. `None` on a clean end of stream between frames.
pub async fn read_prefix<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<[u8; 4]>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = reader.read(&mut prefix[filled..]).await?;
        if n == 0 {
            return if filled == 0 { Ok(None) } else { Err(FrameError::Truncated) };
        }
        filled += n;
    }
    Ok(Some(prefix))
}

/// Bodies this large are read into an allocation the connection reuses;
/// smaller ones come from the allocator, which keeps them on its heap.
const REUSED_BODY_BYTES_MIN: usize = 64 * 1024;

/// Where a connection reads frame bodies. A large body (a produce request)
/// is read into the allocation the last large one used, once the request
/// that held it is done with it: megabyte frames fresh from the allocator
/// each arrive as new pages, faulted in and zeroed, a cost per byte as high
/// as reading them. Each body still pins only the allocation it was read
/// into, at most `len` rounded up to `REUSED_BODY_BYTES_MIN`, so the server's
/// request byte budget goes on bounding memory.
#[derive(Default)]
pub struct BodyBuffer {
    /// Empty; its capacity is what is left of the last large allocation.
    spare: bytes::BytesMut,
}

impl BodyBuffer {
    /// Reads exactly `len` body bytes. `len` has been checked by `body_length`.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        len: usize,
    ) -> Result<bytes::Bytes, FrameError> {
        let mut body = if len < REUSED_BODY_BYTES_MIN {
            bytes::BytesMut::with_capacity(len)
        } else {
            // Reclaims only if no request still holds a body read into
            // it (or its tail has room): never shares pages with one.
            if !self.spare.try_reclaim(len) {
                self.spare = bytes::BytesMut::with_capacity(len.next_multiple_of(REUSED_BODY_BYTES_MIN));
            }
            std::mem::take(&mut self.spare)
        };
        debug_assert!(body.is_empty() && body.capacity() >= len);
        // `take` keeps the reads inside this frame whatever spare capacity the
        // buffer has: the next frame's bytes stay in the reader.
        let mut limited = reader.take(len as u64);
        while body.len() < len {
            if limited.read_buf(&mut body).await? == 0 {
                return Err(FrameError::Truncated);
            }
        }
        if len >= REUSED_BODY_BYTES_MIN {
            // The rest of the allocation goes back; the body keeps it alive.
            self.spare = body.split_off(len);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_before_allocation() {
        assert!(matches!(body_length((-1i32).to_be_bytes(), 100), Err(FrameError::Negative(-1))));
        assert!(matches!(body_length(i32::MIN.to_be_bytes(), 100), Err(FrameError::Negative(_))));
        assert!(matches!(
            body_length(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        ));
        for short in 0i32..8 {
            assert!(matches!(body_length(short.to_be_bytes(), 100), Err(FrameError::TooShort(_))));
        }
        assert_eq!(body_length(8i32.to_be_bytes(), 100).unwrap(), 8);
        assert_eq!(body_length(100i32.to_be_bytes(), 100).unwrap(), 100);
    }

    #[tokio::test]
    async fn reads_frames_and_reports_truncation() {
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 9, b'x'];
        let prefix = read_prefix(&mut input).await.unwrap().unwrap();
        assert_eq!(prefix, [0, 0, 0, 3]);
        let mut bodies = BodyBuffer::default();
        assert_eq!(&bodies.read(&mut input, 3).await.unwrap()[..], b"abc");
        let prefix = read_prefix(&mut input).await.unwrap().unwrap();
        assert_eq!(i32::from_be_bytes(prefix), 9);
        assert!(matches!(bodies.read(&mut input, 9).await, Err(FrameError::Truncated)));
        assert!(read_prefix(&mut input).await.unwrap().is_none());
        let mut half: &[u8] = &[0, 0];
        assert!(matches!(read_prefix(&mut half).await, Err(FrameError::Truncated)));
    }

    /// A large body reuses the allocation of the one before once that one
    /// is dropped, and never while it is alive: a live body's bytes stay.
    #[tokio::test]
    async fn large_bodies_reuse_an_allocation_only_once_it_is_free() {
        let len = REUSED_BODY_BYTES_MIN + 100;
        let frames: Vec<u8> = (0..3).flat_map(|i| vec![b'a' + i; len]).collect();
        let mut input: &[u8] = &frames;
        let mut bodies = BodyBuffer::default();
        let first = bodies.read(&mut input, len).await.unwrap();
        let second = bodies.read(&mut input, len).await.unwrap();
        assert_ne!(first.as_ptr(), second.as_ptr(), "the first body is still held");
        assert!(first.iter().all(|&b| b == b'a') && second.iter().all(|&b| b == b'b'));
        let second_at = second.as_ptr();
        drop((first, second));
        let third = bodies.read(&mut input, len).await.unwrap();
        assert_eq!(third.as_ptr(), second_at, "the freed allocation is read into again");
        assert!(third.iter().all(|&b| b == b'c'));
        let mut small: &[u8] = b"xyz";
        let held = bodies.read(&mut small, 3).await.unwrap();
        assert_eq!(&held[..], b"xyz");
        assert_ne!(held.as_ptr(), second_at, "small bodies do not pin the large allocation");
    }
}
