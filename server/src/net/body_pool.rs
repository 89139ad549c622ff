//! Buffers that large request bodies are read into, reused server-wide.
//!
//! A megabyte produce frame read into a fresh allocation arrives on new
//! pages, faulted in and zeroed: a cost per byte as high as reading it (~4 %
//! of the server's produce profile). Bodies of `POOLED_BODY_BYTES_MIN` or
//! more are read into a buffer from this pool instead, and the buffer comes
//! back when the last `Bytes` of the body is dropped (the request is done
//! and the engine has copied its records).
//!
//! Memory stays bounded as before: a body in use holds a buffer of at most
//! twice its length (its share of the request byte budget), and the free
//! buffers together hold at most `free_bytes_max`. Bodies below the
//! minimum come from the allocator, which keeps small blocks on its heap.

use super::frame::FrameError;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bodies this large are read into pooled buffers.
pub const POOLED_BODY_BYTES_MIN: usize = 64 * 1024;

/// What the free buffers may hold by default: enough for a few dozen
/// producers' megabyte batches in flight at once.
pub const POOL_FREE_BYTES_MAX: usize = 64 * 1024 * 1024;

pub struct BodyPool {
    free: Mutex<Free>,
    free_bytes_max: usize,
}

#[derive(Default)]
struct Free {
    buffers: Vec<Vec<u8>>,
    /// Sum of the buffers' capacities.
    bytes: usize,
}

impl BodyPool {
    pub fn new(free_bytes_max: usize) -> Arc<BodyPool> {
        Arc::new(BodyPool { free: Mutex::new(Free::default()), free_bytes_max })
    }

    /// Reads exactly `len` body bytes. `len` has been checked by
    /// `body_length`.
    pub async fn read<R: AsyncRead + Unpin>(
        self: &Arc<Self>,
        reader: &mut R,
        len: usize,
    ) -> Result<Bytes, FrameError> {
        // `take` keeps the reads inside this frame whatever spare capacity
        // the buffer has: the next frame's bytes stay in the reader.
        let mut limited = reader.take(len as u64);
        if len < POOLED_BODY_BYTES_MIN {
            let mut body = bytes::BytesMut::with_capacity(len);
            while body.len() < len {
                if limited.read_buf(&mut body).await? == 0 {
                    return Err(FrameError::Truncated);
                }
            }
            return Ok(body.freeze());
        }
        let mut body = Pooled { buf: self.take(len), pool: Arc::clone(self) };
        debug_assert!(body.buf.is_empty() && body.buf.capacity() >= len);
        while body.buf.len() < len {
            // A failed or truncated read returns the buffer through `Drop`.
            if limited.read_buf(&mut body.buf).await? == 0 {
                return Err(FrameError::Truncated);
            }
        }
        Ok(Bytes::from_owner(body))
    }

    /// Free buffers and the bytes they hold.
    pub fn free_stats(&self) -> (usize, usize) {
        let free = self.free();
        (free.buffers.len(), free.bytes)
    }

    /// An empty buffer with room for `len` bytes: a free one no larger than
    /// twice that, else a new one.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.free();
        let fits = free.buffers.iter().position(|b| b.capacity() >= len && b.capacity() <= 2 * len);
        if let Some(index) = fits {
            let buf = free.buffers.swap_remove(index);
            free.bytes -= buf.capacity();
            return buf;
        }
        drop(free);
        Vec::with_capacity(len.next_multiple_of(POOLED_BODY_BYTES_MIN))
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut free = self.free();
        if free.bytes + buf.capacity() <= self.free_bytes_max {
            free.bytes += buf.capacity();
            free.buffers.push(buf);
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Free> {
        // The lists stay consistent whatever panicked while holding the lock.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A body in a pooled buffer; the buffer goes back when it is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BodyPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: usize = POOLED_BODY_BYTES_MIN + 100;

    fn frames(bytes: &[u8], len: usize) -> Vec<u8> {
        bytes.iter().flat_map(|&b| vec![b; len]).collect()
    }

    /// A buffer is read into again only once the body in it is dropped;
    /// a live body's bytes stay as they were read.
    #[tokio::test]
    async fn a_buffer_is_reused_only_once_its_body_is_dropped() {
        let pool = BodyPool::new(POOL_FREE_BYTES_MAX);
        let input = frames(b"abc", LEN);
        let mut input: &[u8] = &input;
        let first = pool.read(&mut input, LEN).await.unwrap();
        let second = pool.read(&mut input, LEN).await.unwrap();
        assert_ne!(first.as_ptr(), second.as_ptr(), "the first body is still held");
        assert!(first.iter().all(|&b| b == b'a') && second.iter().all(|&b| b == b'b'));
        let (first_at, second_at) = (first.as_ptr(), second.as_ptr());
        let slice = second.slice(10..20);
        drop(second);
        assert_eq!(pool.free_stats().0, 0, "a slice of the second body keeps its buffer");
        drop(first);
        assert_eq!(pool.free_stats().0, 1);
        drop(slice);
        assert_eq!(pool.free_stats().0, 2);
        let third = pool.read(&mut input, LEN).await.unwrap();
        assert!(third.as_ptr() == first_at || third.as_ptr() == second_at, "a free buffer was read into");
        assert!(third.iter().all(|&b| b == b'c'));
        assert_eq!(pool.free_stats().0, 1);
    }

    /// Small bodies are not pooled, and a large free buffer is not handed
    /// to a body under half its size (it would hold more than its budget).
    #[tokio::test]
    async fn small_bodies_do_not_take_large_buffers() {
        let pool = BodyPool::new(POOL_FREE_BYTES_MAX);
        let big = 4 * LEN;
        let input = frames(b"x", big);
        drop(pool.read(&mut &input[..], big).await.unwrap());
        assert_eq!(pool.free_stats().0, 1);
        let mut small: &[u8] = b"xyz";
        drop(pool.read(&mut small, 3).await.unwrap());
        let input = frames(b"y", LEN);
        let body = pool.read(&mut &input[..], LEN).await.unwrap();
        assert_eq!(pool.free_stats().0, 1, "the big buffer stayed free");
        assert_eq!(body.len(), LEN);
    }

    /// The free buffers never hold more than the pool's bound, and a read
    /// cut short gives its buffer back.
    #[tokio::test]
    async fn free_buffers_stay_within_the_bound() {
        let pool = BodyPool::new(2 * LEN.next_multiple_of(POOLED_BODY_BYTES_MIN));
        let input = frames(b"abcd", LEN);
        let mut input: &[u8] = &input;
        let mut bodies = Vec::new();
        for _ in 0..4 {
            bodies.push(pool.read(&mut input, LEN).await.unwrap());
        }
        drop(bodies);
        let (count, bytes) = pool.free_stats();
        assert_eq!(count, 2);
        assert!(bytes <= 2 * LEN.next_multiple_of(POOLED_BODY_BYTES_MIN));
        let short = vec![0u8; LEN - 1];
        assert!(matches!(pool.read(&mut &short[..], LEN).await, Err(FrameError::Truncated)));
        assert_eq!(pool.free_stats().0, 2, "the cut-short read's buffer came back");
    }
}
