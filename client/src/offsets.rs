//! ListOffsets: a partition's first offset, its end, or the first offset
//! at or after a timestamp.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::error::{check, ClientError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: where the next record will go.
    Latest,
    /// The first offset whose timestamp is at or after this (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    /// Kafka's encoding: -2 earliest, -1 latest, else a timestamp.
    fn wire_value(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

impl Client {
    /// The offset `spec` names in `topic`-`partition`, or -1 if a timestamp
    /// lies past the last record.
    pub async fn list_offset(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        self.with_retries(Some(topic), true, || self.list_offset_once(topic, partition, spec)).await
    }

    async fn list_offset_once(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let connection = self.leader_connection(topic, partition).await?;
        let timeout_ms = i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
        let response = connection
            .request(|version| {
                let partitions = vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(spec.wire_value())];
                let topics = vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(partitions)];
                let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(topics);
                // The field exists only from v10.
                if version >= 10 {
                    request.with_timeout_ms(timeout_ms)
                } else {
                    request
                }
            })
            .await?;
        let answer = response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_owned(),
                reason: format!("ListOffsets response has no entry for {topic}-{partition}"),
            })?;
        check(answer.error_code, None, || format!("list offsets of {topic}-{partition}"))?;
        Ok(answer.offset)
    }
}
