//! InitProducerId: the producer id and epoch an idempotent producer
//! stamps on its batches, with a sequence number per partition, so that
//! the leader appends a retried batch once.

use kafka_protocol::messages::InitProducerIdRequest;

use super::cluster::Client;
use super::error::{check, Result};

/// An idempotent producer's identity, as the broker handed it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Client {
    /// Asks any broker for a producer id (one attempt, no transactional id).
    pub async fn init_producer_id(&self) -> Result<ProducerIdentity> {
        let connection = self.any_connection().await?;
        let response = connection
            .request(|_version| {
                // Producer id and epoch stay -1 (the defaults): a new producer.
                InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1)
            })
            .await?;
        check(response.error_code, None, || "init producer id".to_owned())?;
        Ok(ProducerIdentity { producer_id: response.producer_id.0, producer_epoch: response.producer_epoch })
    }
}
