//! Where a credential, ACL or client quota change goes: a single node
//! journals it itself (J1); a cluster member sends it to the controller
//! quorum and answers once it has followed the image holding it (C3), so
//! every broker of the cluster enforces the same security state.

use super::metadata_journal::MetadataChange;
use super::Broker;
use crate::error::BrokerError;
use crate::io::Disk;
use crate::security::state::SecurityChange;

impl<D: Disk> Broker<D> {
    /// Held while a security change is planned and made on a single node,
    /// so that a check (the credential to delete exists) and the change
    /// are one step. A cluster member holds nothing: following an image
    /// takes the same lock, and the quorum orders the changes (each is
    /// absolute, so one planned from a slightly older image still means
    /// what it says).
    pub(super) async fn security_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.config.quorum {
            true => None,
            false => Some(self.metadata_changes.lock().await),
        }
    }

    /// The credentials, ACLs and quotas this broker holds now.
    pub fn security_state(&self) -> crate::security::state::SecurityState {
        self.metadata().security.clone()
    }

    /// Makes `changes` durable, together, before they are acknowledged.
    pub(super) async fn commit_security(&self, changes: Vec<SecurityChange>) -> Result<(), BrokerError> {
        if changes.is_empty() {
            return Ok(());
        }
        if self.config.quorum {
            return self.link()?.change_security(changes).await;
        }
        self.persist(changes.into_iter().map(MetadataChange::Security).collect()).await
    }
}
