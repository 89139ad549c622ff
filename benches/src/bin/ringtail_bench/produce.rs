//! The producers: paced or flat out, each with its own client and requests
//! pipelined on it.

use super::{bench_config, nanos_since, protocol, Args, Report, Result, STAMP_BYTES};
use bytes::{BufMut, Bytes, BytesMut};
use ringtail_benches::histogram::Histogram;
use ringtail_client::produce::now_ms;
use ringtail_client::{build_batch, Acks, Client, ProducerRecord};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Runs every producer task and merges their counts and latencies.
pub(super) async fn produce_all(
    args: &Args,
    partitions: Vec<i32>,
    t0: Instant,
    stamp: bool,
) -> Result<Report> {
    let started = Instant::now();
    let partitions = Arc::new(partitions);
    let producers = u64::from(args.producers);
    // Paced producers keep one schedule, started once every producer has
    // had time to connect.
    let schedule_start = started + SCHEDULE_LEAD;
    let mut tasks = JoinSet::new();
    for index in 0..producers {
        // The first `messages % producers` producers take one extra.
        let share = args.messages / producers + u64::from(index < args.messages % producers);
        let job = ProducerJob {
            index: index as usize,
            messages: share,
            size: args.size,
            batch_bytes: args.batch_bytes as usize,
            in_flight: args.in_flight as usize,
            acks: args.acks,
            topic: args.topic.clone(),
            bootstrap: args.bootstrap.clone(),
            partitions: Arc::clone(&partitions),
            stamp,
            t0,
            partition_per_producer: args.partition_per_producer,
            rate: args.rate as f64 / producers as f64,
            schedule_start,
            // Producers take turns: independent producers send at
            // independent moments, and a half load sent by all in the same
            // instant would be a full load for that instant.
            phase: index as f64 / producers as f64,
        };
        tasks.spawn(job.run());
    }
    let mut latency = Histogram::new();
    let mut messages = 0;
    while let Some(joined) = tasks.join_next().await {
        let (sent, histogram) = joined.map_err(|e| protocol(format!("producer task: {e}")))??;
        messages += sent;
        latency.merge(&histogram);
    }
    let value_bytes = messages * args.size as u64;
    // A paced run lasts from its schedule's start: the lead before it is
    // not sending time.
    let elapsed = if args.rate > 0 { schedule_start.elapsed() } else { started.elapsed() };
    Ok(Report { messages, value_bytes, elapsed, latency, latency_kind: "produce request" })
}

struct ProducerJob {
    index: usize,
    messages: u64,
    size: usize,
    batch_bytes: usize,
    in_flight: usize,
    acks: Acks,
    topic: String,
    bootstrap: String,
    partitions: Arc<Vec<i32>>,
    stamp: bool,
    t0: Instant,
    partition_per_producer: bool,
    /// This producer's messages per second; 0 for unpaced.
    rate: f64,
    schedule_start: Instant,
    /// Where in each batch interval this producer's batches fall due, as a
    /// fraction of the interval.
    phase: f64,
}

impl ProducerJob {
    /// Sends this producer's share; returns records sent and request latencies.
    async fn run(self) -> Result<(u64, Histogram)> {
        let client = Arc::new(Client::connect(&self.bootstrap, bench_config()).await?);
        let per_batch = (self.batch_bytes / self.size.max(1)).max(1) as u64;
        let filler = Bytes::from(vec![b'x'; self.size]);
        let mut latency = Histogram::new();
        let mut requests = JoinSet::new();
        let (mut sent, mut batch_number) = (0u64, self.index);
        let mut pacer = (self.rate > 0.0)
            .then(|| pace(self.rate, per_batch, self.messages, self.schedule_start, self.phase));
        let mut ready = None;
        while sent < self.messages || !requests.is_empty() {
            if sent < self.messages && requests.len() < self.in_flight {
                let count = per_batch.min(self.messages - sent);
                // A producer fills a batch as its records arrive and sends it
                // when it is due, so the batch is built before the wait;
                // unless its records carry their send time (e2e).
                if ready.is_none() && !self.stamp {
                    ready = Some(self.batch(count, &filler));
                }
                // Paced: wait for this batch's due time; answers are
                // collected while waiting.
                let mut due = None;
                if let Some(ticks) = &mut pacer {
                    tokio::select! {
                        tick = ticks.recv() => {
                            due = Some(tick.ok_or_else(|| protocol("the pacer thread stopped".into()))?);
                        }
                        Some(joined) = requests.join_next() => {
                            latency.record(joined.map_err(|e| protocol(format!("produce task: {e}")))??);
                            continue;
                        }
                    }
                }
                let batch = ready.take().unwrap_or_else(|| self.batch(count, &filler));
                let slot = if self.partition_per_producer { self.index } else { batch_number };
                let partition = self.partitions[slot % self.partitions.len()];
                batch_number += 1;
                let (client, topic, acks) = (Arc::clone(&client), self.topic.clone(), self.acks);
                // Latency counts from when the batch was due, if paced.
                let started = due.unwrap_or_else(Instant::now);
                requests.spawn(async move {
                    client.produce_batch(&topic, partition, batch, acks).await.map(|_| started.elapsed())
                });
                sent += count;
                continue;
            }
            if let Some(joined) = requests.join_next().await {
                let elapsed = joined.map_err(|e| protocol(format!("produce task: {e}")))??;
                latency.record(elapsed);
            }
        }
        Ok((sent, latency))
    }

    fn batch(&self, count: u64, filler: &Bytes) -> Bytes {
        let records: Vec<ProducerRecord> = (0..count)
            .map(|_| {
                let value = if self.stamp {
                    let mut value = BytesMut::with_capacity(self.size);
                    value.put_u64(nanos_since(self.t0));
                    value.extend_from_slice(&filler[STAMP_BYTES..]);
                    value.freeze()
                } else {
                    filler.clone()
                };
                ProducerRecord { key: None, value: Some(value) }
            })
            .collect();
        build_batch(&records, now_ms())
    }
}

/// Due times of a paced producer's batches, each sent when it is due: the
/// batch starting at message `sent` is due at `(sent + phase × per_batch) /
/// rate` seconds after `start`.
///
/// A thread of its own sleeps to each one, as tokio's timer has whole
/// milliseconds: a `sleep_until` wakes up to a millisecond late, and since
/// latency counts from the due time (no coordinated omission), the load
/// generator's own lateness would be reported as the broker's. A thread's
/// sleep is hrtimer-precise (tens of microseconds here).
fn pace(
    rate: f64,
    per_batch: u64,
    messages: u64,
    start: Instant,
    phase: f64,
) -> mpsc::UnboundedReceiver<Instant> {
    let (ticks, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut sent = 0u64;
        while sent < messages {
            let due = due_at(start, sent, rate, per_batch, phase);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if ticks.send(due).is_err() {
                return;
            }
            sent += per_batch.min(messages - sent);
        }
    });
    rx
}

/// When the batch starting at message `sent` falls due (see `pace`).
fn due_at(start: Instant, sent: u64, rate: f64, per_batch: u64, phase: f64) -> Instant {
    start + Duration::from_secs_f64((sent as f64 + phase * per_batch as f64) / rate)
}

/// How long after the producers start their paced schedule begins: time to
/// connect, so that the first batches are not late by the connection's
/// doing.
const SCHEDULE_LEAD: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;

    /// Four producers of 100 batches/s each take turns: together one batch
    /// every 2.5 ms, never two at once.
    #[test]
    fn paced_producers_take_turns() {
        let (start, per_batch, rate) = (Instant::now(), 10, 1000.0);
        let mut dues: Vec<Duration> = (0..4)
            .flat_map(|producer| {
                (0..5).map(move |batch| {
                    due_at(start, batch * per_batch, rate, per_batch, producer as f64 / 4.0) - start
                })
            })
            .collect();
        dues.sort();
        for (n, due) in dues.iter().enumerate() {
            let want = Duration::from_micros(2500 * n as u64);
            assert!(due.abs_diff(want) < Duration::from_micros(1), "batch {n} due at {due:?}, want {want:?}");
        }
    }
}
