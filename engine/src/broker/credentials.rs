//! Users' SCRAM credentials, kept in the cluster metadata.

use super::Broker;
use crate::io::Disk;
use crate::security::scram::{ScramCredential, ScramMechanism};

impl<D: Disk> Broker<D> {
    /// `user`'s credential for `mechanism`, if it has one.
    pub fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.metadata().scram_credentials.get(user)?.get(&mechanism).cloned()
    }
}
