//! Running per-partition futures together, in order: a request handler's
//! appends and reads, the broker's ISR changes.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

/// Awaits every future, returning their outputs in order. Unlike general
/// combinators it guarantees that each poll polls the unfinished futures in
/// order, the first poll included: a produce's appends are queued in its
/// first poll (see `Sequencing::AfterFirstPoll`), so a request's partitions
/// are queued in request order before the next request starts.
pub async fn join_in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    // Every slot is filled once the poll above is ready.
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn first_poll_starts_every_future_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let futures: Vec<_> = (0..50)
            .map(|i| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(i);
                    tokio::task::yield_now().await;
                    i * 2
                }
            })
            .collect();
        let mut joined = Box::pin(join_in_order(futures));
        let waker = std::task::Waker::noop();
        assert!(joined.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
        assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
        assert_eq!(joined.await, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }
}
