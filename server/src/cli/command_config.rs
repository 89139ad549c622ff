//! `--command-config FILE`: how the admin and quick-start commands reach a
//! secured listener, in librdkafka's property names (`security.protocol`,
//! `ssl.ca.location`, `sasl.mechanism`, `sasl.username`, `sasl.password`),
//! as Kafka's own tools take them.

use super::CliError;
use ringtail_client::security::Security;
use ringtail_client::ClientConfig;
use std::path::Path;

/// `config` with the security `command_config` names (none: as it is).
pub(crate) fn secured(config: ClientConfig, command_config: Option<&Path>) -> Result<ClientConfig, CliError> {
    let Some(path) = command_config else { return Ok(config) };
    let security =
        Security::from_properties_file(path).map_err(|e| CliError::Usage(format!("--command-config {e}")))?;
    Ok(ClientConfig { security, ..config })
}
