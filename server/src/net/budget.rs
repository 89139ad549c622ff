//! The server-wide budget of request bytes being read or handled.
//!
//! A frame takes its whole length from the budget before its body is read
//! (so memory stays bounded), and gives it back once handled. Unlike a
//! fair semaphore, waiters are not queued first come, first served: when
//! bytes come back every waiter looks again, and whoever fits goes ahead,
//! as Kafka's memory pool does. So a large frame waiting for room never
//! holds up the small requests behind it, and a few connections that
//! announce huge frames cannot stall the rest; `connection` bounds how long
//! they may hold what they took (a minimum upload rate).

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub struct RequestBudget {
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
        Arc::new(RequestBudget { available: Mutex::new(bytes), released: Notify::new() })
    }

    fn available(&self) -> std::sync::MutexGuard<'_, usize> {
        self.available.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes free now.
    pub fn free(&self) -> usize {
        *self.available()
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

impl Drop for Taken {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        *self.budget.available() += self.bytes;
        self.budget.released.notify_waiters();
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
}
