//! Fetch: read records from partitions, one request per leader broker.
//!
//! `fetch_batches` returns each partition's record batches as they came
//! (see `fetched`), for consumers that read records in place; `fetch`
//! decodes them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::connection::Connection;
use super::error::{ClientError, Result};
use super::fetched::FetchedBatches;

/// Kafka's consumer defaults (`fetch.max.wait.ms`, `fetch.max.bytes`,
/// `max.partition.fetch.bytes`).
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// How long the broker may hold the request waiting for `min_bytes`.
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
        }
    }
}

/// Where to read one partition from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one partition returned. `next_offset` is where to fetch next:
/// past every complete batch returned, even those with no records to show
/// (transaction markers, records before the fetch offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFetch {
    pub partition: i32,
    pub records: Vec<ConsumedRecord>,
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl Client {
    /// Fetches each position's partition of `topic` from its leader, one
    /// request per leader, all leaders at once. Partitions whose leader
    /// moved are retried after a metadata refresh while others have
    /// nothing to show; if some have records, those are returned at once
    /// and the moved ones come back empty (the next call finds their new
    /// leader). Results are in the order of `positions`.
    pub async fn fetch(
        &self,
        topic: &str,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<PartitionFetch>> {
        self.fetch_batches(topic, positions, options).await?.iter().map(FetchedBatches::decode).collect()
    }

    /// Like `fetch`, but leaves the records encoded, to be read in place.
    pub async fn fetch_batches(
        &self,
        topic: &str,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedBatches>> {
        let mut done: BTreeMap<i32, FetchedBatches> = BTreeMap::new();
        let mut todo: Vec<FetchPosition> = positions.to_vec();
        let mut attempt = 1;
        loop {
            let round = self.fetch_round(topic, &todo, options).await?;
            let got_records = round.done.iter().any(|f| !f.bytes.is_empty());
            done.extend(round.done.into_iter().map(|f| (f.partition, f)));
            let Some(error) = round.stale_error else { break };
            if got_records || attempt >= self.config().attempts_max {
                if done.is_empty() {
                    return Err(error);
                }
                // Report the moved partitions as empty; refresh so the next
                // call routes them right.
                for p in &round.stale {
                    done.insert(p.partition, FetchedBatches::empty(topic, *p));
                }
                let _ = self.fetch_metadata(Some(&[topic])).await;
                break;
            }
            attempt += 1;
            tokio::time::sleep(self.config().backoff(attempt)).await;
            let _ = self.fetch_metadata(Some(&[topic])).await;
            todo = round.stale;
        }
        Ok(positions.iter().filter_map(|p| done.remove(&p.partition)).collect())
    }

    /// One request per leader; splits the outcome into partitions done and
    /// partitions to try again (with the last such error).
    async fn fetch_round(
        &self,
        topic: &str,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Round> {
        let mut round = Round::default();
        let mut by_leader: BTreeMap<String, (Arc<Connection>, Vec<EpochPosition>)> = BTreeMap::new();
        for position in positions {
            match self.leader_and_epoch(topic, position.partition).await {
                Ok((connection, epoch)) => {
                    let entry = by_leader
                        .entry(connection.addr().to_owned())
                        .or_insert_with(|| (connection, Vec::new()));
                    entry.1.push((*position, epoch));
                }
                Err(e) if e.is_stale_metadata() || e.is_connection_failure() => round.stale(*position, e),
                Err(e) => return Err(e),
            }
        }
        // One task per leader, so the requests are in flight together.
        let requests: Vec<_> = by_leader
            .into_values()
            .map(|(connection, group)| {
                let (topic, options) = (topic.to_owned(), *options);
                tokio::spawn(async move {
                    let request = |version| fetch_request(&topic, &group, &options, version);
                    let response = connection.request::<FetchRequest>(request).await;
                    let group: Vec<FetchPosition> = group.into_iter().map(|(p, _)| p).collect();
                    (connection, group, response)
                })
            })
            .collect();
        for joined in requests {
            let (connection, group, response) = joined.await.map_err(|e| ClientError::Protocol {
                addr: "(fetch task)".to_owned(),
                reason: format!("fetch task failed: {e}"),
            })?;
            let response = match response {
                Ok(response) => response,
                Err(e) if e.is_connection_failure() => {
                    for p in &group {
                        round.stale(
                            *p,
                            ClientError::Closed { addr: connection.addr().to_owned(), reason: e.to_string() },
                        );
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.collect_partitions(topic, &group, &response, connection.addr(), &mut round)?;
        }
        Ok(round)
    }

    fn collect_partitions(
        &self,
        topic: &str,
        group: &[FetchPosition],
        response: &FetchResponse,
        addr: &str,
        round: &mut Round,
    ) -> Result<()> {
        super::error::check(response.error_code, None, || format!("fetch from {addr}"))?;
        for position in group {
            let data = response
                .responses
                .iter()
                .filter(|t| t.topic.0.as_str() == topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == position.partition);
            let Some(data) = data else {
                // Brokers may leave out partitions with nothing new.
                round.done.push(FetchedBatches::empty(topic, *position));
                continue;
            };
            let error = super::error::check(data.error_code, None, || {
                format!("fetch {topic}-{} at offset {}", position.partition, position.offset)
            });
            match error {
                Ok(()) => round.done.push(FetchedBatches::new(topic, *position, data)?),
                Err(e) if e.is_stale_metadata() => round.stale(*position, e),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A position and the leader epoch the metadata gave its partition.
type EpochPosition = (FetchPosition, i32);

#[derive(Default)]
struct Round {
    done: Vec<FetchedBatches>,
    stale: Vec<FetchPosition>,
    stale_error: Option<ClientError>,
}

impl Round {
    fn stale(&mut self, position: FetchPosition, error: ClientError) {
        self.stale.push(position);
        self.stale_error = Some(error);
    }
}

/// The request for `group`'s partitions, each with the leader epoch the
/// metadata gave (from Fetch v9, KIP-320): a leader at another epoch
/// refuses instead of answering with a high watermark from before or
/// after the one this client last saw.
fn fetch_request(
    topic: &str,
    group: &[(FetchPosition, i32)],
    options: &FetchOptions,
    version: i16,
) -> FetchRequest {
    let partitions = group
        .iter()
        .map(|(p, epoch)| {
            let partition = FetchPartition::default()
                .with_partition(p.partition)
                .with_fetch_offset(p.offset)
                .with_partition_max_bytes(options.partition_max_bytes);
            if version >= 9 {
                partition.with_current_leader_epoch(*epoch)
            } else {
                partition
            }
        })
        .collect();
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partitions(partitions);
    FetchRequest::default()
        .with_max_wait_ms(i32::try_from(options.max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_topics(vec![topic])
}
