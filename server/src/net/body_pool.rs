//! Buffers that large request bodies are read into, reused server-wide.
//!
//! A megabyte produce frame read into a fresh allocation arrives on new
//! pages, faulted in and zeroed: a cost per byte as high as reading it (~4 %
//! of the server's produce profile). Bodies of `POOLED_BODY_BYTES_MIN` or
//! more are read into a buffer from this pool instead, and the buffer comes
//! back when the last `Bytes` of the body is dropped (the request is done
//! and the engine has copied its records). The body's share of the request
//! byte budget comes back at the same moment (`Body::into_bytes`).
//!
//! Memory stays bounded as before: a body in use holds a buffer of at most
//! twice its length (its share of the request byte budget), and the free
//! buffers together hold at most `free_bytes_max`. Bodies below the
//! minimum come from the allocator, which keeps small blocks on its heap.

use super::budget::Taken;
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
    ) -> Result<Body, FrameError> {
        // `take` keeps the reads inside this frame whatever spare capacity
        // the buffer has: the next frame's bytes stay in the reader.
        let mut limited = reader.take(len as u64);
        let mut body = self.buffer_for(len);
        let buf = body.buf_mut();
        debug_assert!(buf.is_empty() && buf.capacity() >= len);
        while buf.len() < len {
            // A failed or truncated read returns a pooled buffer through
            // `Drop`.
            if limited.read_buf(buf).await? == 0 {
                return Err(FrameError::Truncated);
            }
        }
        Ok(body)
    }

    /// The first `len` bytes of `body` in a buffer of their own size, the
    /// rest (bytes after a request that no field claims) given back.
    pub fn keep_prefix(self: &Arc<Self>, body: Body, len: usize) -> Body {
        if len >= body.len() {
            return body;
        }
        let mut kept = self.buffer_for(len);
        kept.buf_mut().extend_from_slice(&body[..len]);
        kept
    }

    /// An empty body buffer with room for `len` bytes: pooled from
    /// `POOLED_BODY_BYTES_MIN` up, else from the allocator.
    fn buffer_for(self: &Arc<Self>, len: usize) -> Body {
        if len < POOLED_BODY_BYTES_MIN {
            return Body(Buffer::Plain(Vec::with_capacity(len)));
        }
        Body(Buffer::Pooled(Pooled { buf: self.take(len), pool: Arc::clone(self) }))
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

/// A request body read off the socket, not yet handed out as `Bytes`.
pub struct Body(Buffer);

enum Buffer {
    Plain(Vec<u8>),
    Pooled(Pooled),
}

impl Body {
    fn buf_mut(&mut self) -> &mut Vec<u8> {
        match &mut self.0 {
            Buffer::Plain(buf) => buf,
            Buffer::Pooled(pooled) => &mut pooled.buf,
        }
    }

    /// The body as `Bytes` that hold `share` (the body's part of the
    /// request budget) for as long as any slice of them lives: what a
    /// decoded request still refers to stays counted, and nothing else.
    pub fn into_bytes(self, share: Taken) -> Bytes {
        Bytes::from_owner(Held { body: self, _share: share })
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Buffer::Plain(buf) => buf,
            Buffer::Pooled(pooled) => &pooled.buf,
        }
    }
}

/// A body handed out as `Bytes`, with its share of the budget.
struct Held {
    body: Body,
    _share: Taken,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

/// A body in a pooled buffer; the buffer goes back when it is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BodyPool>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::super::budget::RequestBudget;
    use super::*;

    const LEN: usize = POOLED_BODY_BYTES_MIN + 100;

    fn frames(bytes: &[u8], len: usize) -> Vec<u8> {
        bytes.iter().flat_map(|&b| vec![b; len]).collect()
    }

    /// A buffer is read into again only once the body in it is dropped;
    /// a live body's bytes stay as they were read. Its share of the budget
    /// comes back with the buffer, when the last slice goes.
    #[tokio::test]
    async fn a_buffer_is_reused_only_once_its_body_is_dropped() {
        let pool = BodyPool::new(POOL_FREE_BYTES_MAX);
        let budget = RequestBudget::new(4 * LEN);
        let input = frames(b"abc", LEN);
        let mut input: &[u8] = &input;
        let first = pool.read(&mut input, LEN).await.unwrap().into_bytes(budget.take(LEN).await);
        let second = pool.read(&mut input, LEN).await.unwrap().into_bytes(budget.take(LEN).await);
        assert_ne!(first.as_ptr(), second.as_ptr(), "the first body is still held");
        assert!(first.iter().all(|&b| b == b'a') && second.iter().all(|&b| b == b'b'));
        let (first_at, second_at) = (first.as_ptr(), second.as_ptr());
        let slice = second.slice(10..20);
        drop(second);
        assert_eq!(pool.free_stats().0, 0, "a slice of the second body keeps its buffer");
        assert_eq!(budget.held(), 2 * LEN, "and its share of the budget");
        drop(first);
        assert_eq!(pool.free_stats().0, 1);
        drop(slice);
        assert_eq!(pool.free_stats().0, 2);
        assert_eq!(budget.held(), 0);
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

    /// Keeping a prefix copies it into a buffer of its own size and gives
    /// the large one back; a prefix as long as the body keeps the body.
    #[tokio::test]
    async fn a_kept_prefix_lets_the_rest_go() {
        let pool = BodyPool::new(POOL_FREE_BYTES_MAX);
        let input = frames(b"p", 4 * LEN);
        let body = pool.read(&mut &input[..], 4 * LEN).await.unwrap();
        let whole = body.as_ptr();
        let body = pool.keep_prefix(body, 4 * LEN);
        assert_eq!(body.as_ptr(), whole, "nothing to cut, nothing copied");
        let kept = pool.keep_prefix(body, 100);
        assert_eq!(&kept[..], &input[..100]);
        assert_eq!(pool.free_stats().0, 1, "the large buffer went back");
        let kept = pool.keep_prefix(kept, 99);
        assert_eq!(kept.len(), 99);
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
