//! The consumer: fetches prefetched one ahead, records read in place.

use super::{nanos_since, protocol, Args, Report, Result, STAMP_BYTES};
use ringtail_benches::histogram::Histogram;
use ringtail_client::{Client, FetchOptions, FetchPosition, FetchedBatches};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Reads `--messages` records from `positions`. With `stamped`, latency is
/// each record's age (its payload's stamp against now); else per fetch.
pub(super) async fn consume(
    client: &Arc<Client>,
    args: &Args,
    positions: Vec<FetchPosition>,
    t0: Instant,
    stamped: bool,
) -> Result<Report> {
    let started = Instant::now();
    let idle_timeout = Duration::from_millis(args.idle_timeout_ms);
    let options = FetchOptions { max_wait: Duration::from_millis(100), ..FetchOptions::default() };
    let (mut messages, mut value_bytes) = (0u64, 0u64);
    let mut latency = Histogram::new();
    let mut last_progress = Instant::now();
    let (responses, mut fetched_rx) = mpsc::channel(1);
    let prefetcher =
        tokio::spawn(prefetch(Arc::clone(client), args.topic.clone(), positions, options, responses));
    // Ends the prefetcher however this returns.
    let _prefetcher = AbortOnDrop(prefetcher);
    while messages < args.messages {
        if last_progress.elapsed() > idle_timeout {
            return Err(protocol(format!(
                "consumer saw nothing new for {} ms after {messages} of {} records",
                idle_timeout.as_millis(),
                args.messages
            )));
        }
        let Some(fetched) = fetched_rx.recv().await else {
            return Err(protocol("the fetching task ended".to_owned()));
        };
        let (fetched, fetch_latency) = fetched?;
        let mut got = 0u64;
        for partition in &fetched {
            for record in partition.records() {
                let value = record?.value.unwrap_or_default();
                value_bytes += value.len() as u64;
                got += 1;
                if stamped {
                    let stamp =
                        value.get(..STAMP_BYTES).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
                    let stamp =
                        stamp.ok_or_else(|| protocol("record too short to hold a timestamp".into()))?;
                    latency.record(Duration::from_nanos(nanos_since(t0).saturating_sub(stamp)));
                }
            }
        }
        if got > 0 {
            last_progress = Instant::now();
            if !stamped {
                latency.record(fetch_latency);
            }
        }
        messages += got;
    }
    Ok(Report { messages, value_bytes, elapsed: started.elapsed(), latency, latency_kind: "fetch request" })
}

type Fetched = Result<(Vec<FetchedBatches>, Duration)>;

/// Fetches from `positions` on, handing each response to the consumer.
/// The next fetch goes out as soon as a response arrives (its positions
/// are in the batch headers), before anyone reads its records, as Kafka's
/// consumer prefetches; so the broker serves one fetch while the consumer
/// reads the last. A response is fetched only once the consumer has taken
/// the one before: at most one waits unread, and one more is in flight.
async fn prefetch(
    client: Arc<Client>,
    topic: String,
    mut positions: Vec<FetchPosition>,
    options: FetchOptions,
    responses: mpsc::Sender<Fetched>,
) {
    let mut in_flight = start_fetch(&client, &topic, &positions, options);
    while let Ok(slot) = responses.reserve().await {
        let fetched = (&mut in_flight).await.unwrap_or_else(|e| Err(protocol(format!("fetch task: {e}"))));
        if let Ok((fetched, _)) = &fetched {
            for partition in fetched {
                if let Some(position) = positions.iter_mut().find(|p| p.partition == partition.partition) {
                    position.offset = partition.next_offset;
                }
            }
            in_flight = start_fetch(&client, &topic, &positions, options);
        }
        let failed = fetched.is_err();
        slot.send(fetched);
        if failed {
            return;
        }
    }
    in_flight.abort();
}

/// Sends a fetch from a task of its own, so that it is on its way while
/// the caller waits for the consumer. Its latency is measured in the task,
/// from sending to the response, not to when anyone gets to it.
fn start_fetch(
    client: &Arc<Client>,
    topic: &str,
    positions: &[FetchPosition],
    options: FetchOptions,
) -> JoinHandle<Fetched> {
    let (client, topic, positions) = (Arc::clone(client), topic.to_owned(), positions.to_vec());
    tokio::spawn(async move {
        let sent = Instant::now();
        let fetched = client.fetch_batches(&topic, &positions, &options).await?;
        Ok((fetched, sent.elapsed()))
    })
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
