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

#[cfg(test)]
mod tests {
    use super::super::body_pool::BodyPool;
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
        let bodies = BodyPool::new(0);
        assert_eq!(&bodies.read(&mut input, 3).await.unwrap()[..], b"abc");
        let prefix = read_prefix(&mut input).await.unwrap().unwrap();
        assert_eq!(i32::from_be_bytes(prefix), 9);
        assert!(matches!(bodies.read(&mut input, 9).await, Err(FrameError::Truncated)));
        assert!(read_prefix(&mut input).await.unwrap().is_none());
        let mut half: &[u8] = &[0, 0];
        assert!(matches!(read_prefix(&mut half).await, Err(FrameError::Truncated)));
    }
}
