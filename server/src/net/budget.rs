//! The server-wide budget of request bytes in memory.
//!
//! A frame takes its whole length from the budget before its body is read
//! (so memory stays bounded). Its share then travels with its bytes
//! (`body_pool::Body::into_bytes`): it comes back when the last slice of
//! the frame is dropped, not when the handler ends, so a handler that has
//! copied what it needs (a JoinGroup parked for a rebalance, a fetch
//! long-polling) holds none of the budget while it waits. Unlike a
//! fair semaphore, waiters are not queued first come, first served: when
//! bytes come back every waiter looks again, and whoever fits goes ahead,
//! as Kafka's memory pool does. So a large frame waiting for room never
//! holds up the small requests behind it, and a few connections that
//! announce huge frames cannot stall the rest; `connection` bounds how long
//! they may hold what they took (a minimum upload rate).

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub struct RequestBudget {
    capacity: usize,
    available: Mutex<usize>,
    released: Notify,
}

/// Bytes taken from the budget, given back on drop.
pub struct Taken {
    budget: Arc<RequestBudget>,
    bytes: usize,
}

impl RequestBudget {
    pub fn new(bytes: usize) -> Arc<RequestBudget> {
        Arc::new(RequestBudget { capacity: bytes, available: Mutex::new(bytes), released: Notify::new() })
    }

    fn available(&self) -> std::sync::MutexGuard<'_, usize> {
        self.available.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes free now.
    pub fn free(&self) -> usize {
        *self.available()
    }

    /// Bytes taken and not yet given back.
    pub fn held(&self) -> usize {
        self.capacity - self.free()
    }

    /// Takes `bytes` now if they are free.
    pub fn try_take(self: &Arc<Self>, bytes: usize) -> Option<Taken> {
        let mut available = self.available();
        if *available < bytes {
            return None;
        }
        *available -= bytes;
        Some(Taken { budget: self.clone(), bytes })
    }

    /// Takes `bytes` once they are free. `Limits::validate` keeps every
    /// frame within the whole budget, so this ends once enough comes back.
    pub async fn take(self: &Arc<Self>, bytes: usize) -> Taken {
        loop {
            // Registered before looking, so a release in between is seen.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(taken) = self.try_take(bytes) {
                return taken;
            }
            released.await;
        }
    }
}

impl Taken {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back all but `bytes` of what was taken (for a frame whose
    /// padding was cut off before it is handled).
    pub fn shrink_to(&mut self, bytes: usize) {
        let excess = self.bytes.saturating_sub(bytes);
        self.give_back(excess);
    }

    fn give_back(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        debug_assert!(bytes <= self.bytes);
        self.bytes -= bytes;
        *self.budget.available() += bytes;
        self.budget.released.notify_waiters();
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A large frame waiting for room does not hold up a small one that
    /// fits, and gets its turn once enough comes back.
    #[tokio::test]
    async fn a_waiting_large_frame_does_not_block_a_small_one() {
        let budget = RequestBudget::new(100);
        let held = budget.take(70).await;
        let large = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take(60).await }
        });
        tokio::task::yield_now().await;
        let small = tokio::time::timeout(Duration::from_secs(5), budget.take(30)).await.expect("not blocked");
        assert_eq!(budget.free(), 0);
        drop(held);
        drop(small);
        let large = tokio::time::timeout(Duration::from_secs(5), large).await.expect("woken").unwrap();
        assert_eq!(budget.free(), 40);
        drop(large);
        assert_eq!(budget.free(), 100);
    }

    /// Shrinking gives back the excess at once, and wakes a waiter it fits.
    #[tokio::test]
    async fn shrinking_gives_back_the_excess() {
        let budget = RequestBudget::new(100);
        let mut held = budget.take(90).await;
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take(50).await }
        });
        tokio::task::yield_now().await;
        held.shrink_to(40);
        assert_eq!(held.bytes(), 40);
        let waiter = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        assert_eq!(budget.held(), 90);
        held.shrink_to(60);
        assert_eq!(held.bytes(), 40, "shrinking never grows");
        drop((held, waiter));
        assert_eq!(budget.held(), 0);
    }
}
