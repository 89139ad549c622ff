//! DeleteRecords: moves a partition's log start forward, at its leader.

use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::error::{check, ClientError, Result};

/// DeleteRecords' "up to the high watermark".
pub const TO_HIGH_WATERMARK: i64 = -1;

impl Client {
    /// Deletes the records of `topic`-`partition` below `before` (or below
    /// the high watermark for `TO_HIGH_WATERMARK`). Returns the partition's
    /// new low watermark, once every in-sync replica has moved its start.
    pub async fn delete_records(&self, topic: &str, partition: i32, before: i64) -> Result<i64> {
        self.with_retries(Some(topic), true, || self.delete_records_once(topic, partition, before)).await
    }

    async fn delete_records_once(&self, topic: &str, partition: i32, before: i64) -> Result<i64> {
        let connection = self.leader_connection(topic, partition).await?;
        let timeout_ms = i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
        let response = connection
            .request(|_version| {
                let partitions = vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(before)];
                let topics = vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(partitions)];
                DeleteRecordsRequest::default().with_topics(topics).with_timeout_ms(timeout_ms)
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
                reason: format!("DeleteRecords response has no entry for {topic}-{partition}"),
            })?;
        check(answer.error_code, None, || format!("delete records of {topic}-{partition}"))?;
        Ok(answer.low_watermark)
    }
}
