//! A value that many tasks wait on, woken in the order they began waiting.
//!
//! The shape of `tokio::sync::watch`, which we cannot use: since tokio
//! 1.29 its receivers park on one of eight `Notify`s picked by tokio's
//! thread-local random generator, so the order in which waiters wake (a
//! fetch long poll and an acks=all produce waiting on one high watermark)
//! depends on state no seed controls. Under the simulator that broke
//! replays: a seed run twice in one process (madsim's determinism check, a
//! suite's worker thread) took different paths. Here waiters queue on a
//! single `Notify`, which wakes them first come, first served.
//!
//! Semantics follow tokio's: a receiver has seen the value it was created
//! with; `changed` waits for a newer one; once every sender is gone,
//! `changed` and `wait_for` fail instead of waiting forever.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Every sender is gone: nothing will change any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the watched value's sender is gone")]
pub struct Closed;

struct Shared<T> {
    state: Mutex<Versioned<T>>,
    changed: Notify,
    senders: AtomicUsize,
    closed: AtomicBool,
}

struct Versioned<T> {
    value: T,
    version: u64,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Versioned<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A writing end. Dropping the last one closes the channel.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A reading end; each remembers the last version it saw.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// The value, borrowed: hold it briefly, never across an `.await`.
pub struct Ref<'a, T>(MutexGuard<'a, Versioned<T>>);

impl<T> std::ops::Deref for Ref<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

pub fn channel<T>(value: T) -> (Sender<T>, Receiver<T>) {
    let sender = Sender::new(value);
    let receiver = sender.subscribe();
    (sender, receiver)
}

impl<T> Sender<T> {
    pub fn new(value: T) -> Sender<T> {
        let state = Mutex::new(Versioned { value, version: 0 });
        let (changed, senders, closed) = (Notify::new(), AtomicUsize::new(1), AtomicBool::new(false));
        Sender { shared: Arc::new(Shared { state, changed, senders, closed }) }
    }

    /// A receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        let seen = self.shared.lock().version;
        Receiver { shared: self.shared.clone(), seen }
    }

    pub fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.lock())
    }

    /// Stores `value` (receivers or not) and wakes every waiter.
    pub fn send(&self, value: T) {
        self.send_replace(value);
    }

    /// Stores `value`, wakes every waiter, and returns the value it replaced.
    pub fn send_replace(&self, value: T) -> T {
        let mut value = value;
        self.send_modify(|current| std::mem::swap(current, &mut value));
        value
    }

    /// Modifies the value in place and wakes every waiter, changed or not.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Modifies the value in place; waiters wake only if `modify` says it
    /// changed it. Returns what `modify` said.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut state = self.shared.lock();
            let modified = modify(&mut state.value);
            if modified {
                state.version += 1;
            }
            modified
        };
        if modified {
            self.shared.changed.notify_waiters();
        }
        modified
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::SeqCst);
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.closed.store(true, Ordering::SeqCst);
            self.shared.changed.notify_waiters();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver { shared: self.shared.clone(), seen: self.seen }
    }
}

impl<T> Receiver<T> {
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.lock())
    }

    /// The value, marked seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let state = self.shared.lock();
        self.seen = state.version;
        Ref(state)
    }

    /// Whether a value newer than the last seen is there, without waiting.
    pub fn has_changed(&self) -> Result<bool, Closed> {
        let newer = self.shared.lock().version != self.seen;
        if !newer && self.shared.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        Ok(newer)
    }

    /// Waits for a value newer than the last one this receiver saw, and
    /// marks it seen. Fails once the sender is gone with nothing newer.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        self.wait_until(|_, newer| newer.then_some(())).await
    }

    /// Waits until the value (the current one included) satisfies `ready`,
    /// and returns a copy of it. Fails once the sender is gone and it does
    /// not.
    pub async fn wait_for(&mut self, mut ready: impl FnMut(&T) -> bool) -> Result<T, Closed>
    where
        T: Clone,
    {
        self.wait_until(|value, _| ready(value).then(|| value.clone())).await
    }

    /// The one waiting loop: `answer(value, newer_than_seen)` says when.
    async fn wait_until<R>(&mut self, mut answer: impl FnMut(&T, bool) -> Option<R>) -> Result<R, Closed> {
        loop {
            // Queued before the value is looked at, so that a send between
            // the look and the wait still wakes this one.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                let newer = state.version != self.seen;
                self.seen = state.version;
                if let Some(r) = answer(&state.value, newer) {
                    return Ok(r);
                }
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(Closed);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[tokio::test]
    async fn changed_sees_each_newer_value_and_wait_for_checks_the_current_one() {
        let (tx, mut rx) = channel(1u64);
        tx.send(2);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 2);
        assert!(!tx.send_if_modified(|_| false), "an unmodified value wakes nobody");
        assert_eq!(rx.wait_for(|v| *v == 2).await, Ok(2), "the current value counts");
        let waiter = tokio::spawn(async move { rx.wait_for(|v| *v >= 5).await });
        for v in 3..=5 {
            tx.send(v);
            tokio::task::yield_now().await;
        }
        assert_eq!(waiter.await.unwrap(), Ok(5));
    }

    #[tokio::test]
    async fn a_dropped_sender_fails_waiters_after_the_last_value() {
        let (tx, mut rx) = channel(0u64);
        let mut late = tx.subscribe();
        let second = tx.clone();
        tx.send(1);
        drop(tx);
        assert_eq!(rx.changed().await, Ok(()));
        second.send(2);
        drop(second);
        assert_eq!(rx.changed().await, Ok(()), "the last value is still news");
        assert_eq!(*rx.borrow(), 2, "a clone sends like the original");
        assert_eq!(rx.changed().await, Err(Closed));
        assert_eq!(late.wait_for(|v| *v == 7).await, Err(Closed));
    }

    /// The property the module exists for: waiters wake in the order they
    /// began waiting, whatever the thread has run before.
    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_in_the_order_they_began_waiting() {
        let tx = Sender::new(0u64);
        let woke = Arc::new(StdMutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..32 {
            let (mut rx, woke) = (tx.subscribe(), woke.clone());
            tasks.push(tokio::spawn(async move {
                rx.changed().await.unwrap();
                woke.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        tx.send(1);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*woke.lock().unwrap(), (0..32).collect::<Vec<_>>());
    }
}
