//! Produce: records into one uncompressed v2 batch, the batch to the
//! partition's leader.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::log::records::BatchBuilder;

use super::cluster::Client;
use super::error::{ClientError, Result};

/// How many replicas must have a batch before the leader answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No answer at all: the broker sends no response, so errors go unseen.
    None,
    /// The leader has appended the batch.
    Leader,
    /// Every in-sync replica has it.
    All,
}

impl Acks {
    pub fn wire_value(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl FromStr for Acks {
    type Err = String;

    fn from_str(s: &str) -> Result<Acks, String> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks must be 0, 1 or all, not {other:?}")),
        }
    }
}

/// One record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// What the leader said about an appended batch. With `Acks::None` there
/// is no answer, and `base_offset` is -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    /// The partition's log start offset when it appended (Produce v5+; -1
    /// from older brokers and with `Acks::None`).
    pub log_start_offset: i64,
}

/// Milliseconds since the Unix epoch: Kafka's CreateTime.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Encodes `records` as one uncompressed v2 batch stamped `timestamp_ms`.
pub fn build_batch(records: &[ProducerRecord], timestamp_ms: i64) -> Bytes {
    let mut builder = BatchBuilder::new(0, timestamp_ms);
    for record in records {
        builder.push(record.key.clone(), record.value.clone(), timestamp_ms);
    }
    builder.build()
}

impl Client {
    /// Produces `records` as one batch to `topic`-`partition`.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[ProducerRecord],
        acks: Acks,
    ) -> Result<ProduceAck> {
        self.produce_batch(topic, partition, build_batch(records, now_ms()), acks).await
    }

    /// Produces an already encoded batch (or several, concatenated).
    /// Retries after a metadata refresh when the broker refused it as not
    /// the leader; a batch whose fate is unknown (connection broke after
    /// sending) is not retried, since it may have been appended.
    pub async fn produce_batch(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: Acks,
    ) -> Result<ProduceAck> {
        self.with_retries(Some(topic), false, || self.produce_once(topic, partition, batch.clone(), acks))
            .await
    }

    async fn produce_once(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: Acks,
    ) -> Result<ProduceAck> {
        let connection = self.leader_connection(topic, partition).await?;
        let timeout_ms = i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
        let build = |_version| {
            let partition_data =
                PartitionProduceData::default().with_index(partition).with_records(Some(batch));
            let topic_data = TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![partition_data]);
            ProduceRequest::default()
                .with_acks(acks.wire_value())
                .with_timeout_ms(timeout_ms)
                .with_topic_data(vec![topic_data])
        };
        if acks == Acks::None {
            connection.send_without_response(build).await?;
            return Ok(ProduceAck { base_offset: -1, log_append_time_ms: -1, log_start_offset: -1 });
        }
        let response = connection.request(build).await?;
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_owned(),
                reason: format!("Produce response has no entry for {topic}-{partition}"),
            })?;
        if answer.error_code != 0 {
            let mut message = answer.error_message.as_ref().map(|m| m.as_str().to_owned());
            if let Some(first) = answer.record_errors.first() {
                let detail = first.batch_index_error_message.as_ref().map_or("", |m| m.as_str());
                message = Some(format!(
                    "{}record {}: {detail}",
                    message.map(|m| format!("{m}; ")).unwrap_or_default(),
                    first.batch_index
                ));
            }
            return Err(ClientError::Kafka {
                context: format!("produce to {topic}-{partition}"),
                code: answer.error_code,
                message,
            });
        }
        Ok(ProduceAck {
            base_offset: answer.base_offset,
            log_append_time_ms: answer.log_append_time_ms,
            log_start_offset: answer.log_start_offset,
        })
    }
}

/// Kafka's partition for a keyed record: murmur2 of the key, made
/// non-negative, modulo the partition count, so keyed records land where
/// Kafka's own producers would put them.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    let count = u32::try_from(partitions.max(1)).unwrap_or(u32::MAX);
    i32::try_from((murmur2(key) & 0x7fff_ffff) % count).unwrap_or(0)
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtail_engine::log::records::decode_records;

    // Vectors from Kafka's UtilsTest.testMurmur2.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: &[(&str, i32)] = &[
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ];
        for &(key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()) as i32, want, "{key}");
        }
    }

    #[test]
    fn acks_parse_kafka_spellings() {
        assert_eq!("0".parse(), Ok(Acks::None));
        assert_eq!("1".parse(), Ok(Acks::Leader));
        assert_eq!("all".parse(), Ok(Acks::All));
        assert_eq!("-1".parse(), Ok(Acks::All));
        assert!("2".parse::<Acks>().is_err());
    }

    #[test]
    fn batches_decode_to_the_records_given() {
        let records = vec![
            ProducerRecord { key: None, value: Some(Bytes::from_static(b"a")) },
            ProducerRecord { key: Some(Bytes::from_static(b"k")), value: Some(Bytes::from_static(b"b")) },
        ];
        let (header, decoded) = decode_records(&build_batch(&records, 1234)).expect("valid batch");
        assert_eq!(header.record_count, 2);
        assert_eq!(header.base_timestamp, 1234);
        assert_eq!(decoded[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(decoded[1].value.as_deref(), Some(&b"b"[..]));
    }
}
