//! FindCoordinator, and running a group's requests against its
//! coordinator: found once, remembered, found again when it moves.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::cluster::Client;
use crate::connection::Connection;
use crate::error::{check, Result};

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;

/// The broker coordinating a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    pub node_id: i32,
    pub addr: String,
}

impl Client {
    /// Asks any broker which broker coordinates `group` (one attempt).
    pub async fn find_coordinator(&self, group: &str) -> Result<CoordinatorInfo> {
        let connection = self.any_connection().await?;
        let response = connection
            .request(|version| {
                let request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
                if version >= 4 {
                    request.with_coordinator_keys(vec![str_bytes(group)])
                } else {
                    request.with_key(str_bytes(group))
                }
            })
            .await?;
        let context = || format!("find the coordinator of group {group}");
        // v4 answers in a list, earlier versions at the top level.
        let (error_code, message, node_id, host, port) = match response.coordinators.first() {
            Some(c) => (c.error_code, c.error_message.clone(), c.node_id.0, c.host.clone(), c.port),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.node_id.0,
                response.host,
                response.port,
            ),
        };
        check(error_code, message.as_ref().map(StrBytes::as_str), context)?;
        let host = host.as_str();
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        Ok(CoordinatorInfo { node_id, addr })
    }

    /// The connection to `group`'s coordinator, found if not known yet.
    pub async fn coordinator_connection(&self, group: &str) -> Result<Arc<Connection>> {
        let addr = match self.cached_coordinator(group).await {
            Some(addr) => addr,
            None => {
                let found = self.find_coordinator(group).await?;
                self.set_coordinator(group, Some(found.addr.clone())).await;
                found.addr
            }
        };
        let connection = self.connection_to(&addr).await;
        if connection.is_err() {
            self.set_coordinator(group, None).await;
        }
        connection
    }

    /// Runs `op` against `group`'s coordinator. When the broker is not the
    /// coordinator (any more), not ready, or unreachable, forgets it, waits
    /// (backing off) and finds it again, for up to the request timeout.
    pub async fn with_coordinator<T, F, Fut>(&self, group: &str, mut op: F) -> Result<T>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.config().request_timeout;
        let mut attempt = 1;
        loop {
            let result = match self.coordinator_connection(group).await {
                Ok(connection) => op(connection).await,
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !(error.is_coordinator_error() || error.is_connection_failure()) {
                return Err(error);
            }
            self.set_coordinator(group, None).await;
            attempt += 1;
            let pause = self.config().backoff(attempt);
            if Instant::now() + pause >= deadline {
                return Err(error);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Forgets `group`'s coordinator, so the next request finds it again.
    pub async fn forget_coordinator(&self, group: &str) {
        self.set_coordinator(group, None).await;
    }
}
