//! `[[listener]]` tables of the config file: Kafka listeners beyond the
//! one `--listen` opens (named `PLAINTEXT`, as Kafka names its default),
//! each with its own address and security protocol:
//!
//! ```toml
//! [[listener]]
//! name = "secure"
//! address = "0.0.0.0:9094"
//! advertise = "broker1.example.com:9094"
//! security-protocol = "SSL"
//! tls-cert = "/etc/ringtail/cert.pem"
//! tls-key = "/etc/ringtail/key.pem"
//! tls-client-ca = "/etc/ringtail/ca.pem"   # optional: clients must present a certificate it signed
//! ```
//!
//! PLAINTEXT and SSL work; SASL_PLAINTEXT and SASL_SSL are refused until
//! SASL is implemented, rather than accepted and left open.

use super::parse::{parse_advertise, parse_host_port};
use super::{ConfigError, HostPort, Origin};
use crate::net::tls::TlsFiles;
use std::path::{Path, PathBuf};

/// The table name in the config file.
pub const LISTENER_TABLE: &str = "listener";
/// The name of the listener `--listen` opens.
pub const DEFAULT_LISTENER_NAME: &str = "PLAINTEXT";

const KEYS: [&str; 8] = [
    "name",
    "address",
    "advertise",
    "security-protocol",
    "sasl-mechanisms",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub address: HostPort,
    /// `None`: the address's host with the port actually bound.
    pub advertise: Option<HostPort>,
    pub security: SecurityProtocol,
    /// Set exactly for SSL listeners.
    pub tls: Option<TlsFiles>,
}

/// Parses and checks the `[[listener]]` tables (already taken out of the
/// file's top level).
pub(super) fn parse(path: &Path, value: Option<toml::Value>) -> Result<Vec<ListenerConfig>, ConfigError> {
    let origin = || Some(Origin::File(path.to_path_buf()));
    let tables = match value {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(tables)) => tables,
        Some(_) => {
            return Err(ConfigError {
                key: LISTENER_TABLE.into(),
                origin: origin(),
                problem: "must be an array of tables: [[listener]]".into(),
            })
        }
    };
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let key = |field: &str| format!("{LISTENER_TABLE}[{i}].{field}");
        let error = |field: &str, problem: String| ConfigError { key: key(field), origin: origin(), problem };
        let toml::Value::Table(table) = table else {
            return Err(error("", "must be a table".into()));
        };
        for field in table.keys() {
            if !KEYS.contains(&field.as_str()) {
                return Err(error(field, format!("unknown key; known keys are {}", KEYS.join(", "))));
            }
        }
        let text = |field: &str| -> Result<Option<String>, ConfigError> {
            match table.get(field) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(error(field, "expected a string".into())),
            }
        };
        let name = text("name")?.ok_or_else(|| error("name", "every listener needs a name".into()))?;
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(error("name", format!("{name:?} may only hold ASCII letters, digits, '_' and '-'")));
        }
        let taken = name.eq_ignore_ascii_case(DEFAULT_LISTENER_NAME)
            || listeners.iter().any(|l| l.name.eq_ignore_ascii_case(&name));
        if taken {
            return Err(error(
                "name",
                format!("{name} is taken (the --listen listener is {DEFAULT_LISTENER_NAME})"),
            ));
        }
        let address =
            text("address")?.ok_or_else(|| error("address", "every listener needs an address".into()))?;
        let address = parse_host_port(&address).map_err(|e| error("address", e))?;
        let advertise =
            text("advertise")?.map(|a| parse_advertise(&a)).transpose().map_err(|e| error("advertise", e))?;
        if advertise.is_none() && address.is_unspecified() {
            return Err(error(
                "advertise",
                format!("listening on {address} needs an address clients can reach: set advertise"),
            ));
        }
        let protocol = text("security-protocol")?.unwrap_or_else(|| "PLAINTEXT".into());
        let security = match protocol.as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" | "SASL_SSL" => {
                return Err(error("security-protocol", format!("{protocol} is not supported yet (no SASL)")))
            }
            other => {
                return Err(error(
                    "security-protocol",
                    format!("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {other:?}"),
                ))
            }
        };
        if table.contains_key("sasl-mechanisms") {
            return Err(error("sasl-mechanisms", "SASL is not supported yet".into()));
        }
        let file = |field: &str| text(field).map(|v| v.map(PathBuf::from));
        let (cert, key_file, client_ca) = (file("tls-cert")?, file("tls-key")?, file("tls-client-ca")?);
        let tls = match security {
            SecurityProtocol::Plaintext => {
                if let Some(field) =
                    ["tls-cert", "tls-key", "tls-client-ca"].iter().find(|f| table.contains_key(**f))
                {
                    return Err(error(field, "only an SSL listener takes TLS files".into()));
                }
                None
            }
            SecurityProtocol::Ssl => {
                let cert =
                    cert.ok_or_else(|| error("tls-cert", "an SSL listener needs a certificate".into()))?;
                let key =
                    key_file.ok_or_else(|| error("tls-key", "an SSL listener needs a private key".into()))?;
                let files = TlsFiles { cert, key, client_ca };
                // Read now, so a bad file is a configuration error.
                files.server_config().map_err(|e| error(e.field, e.problem))?;
                Some(files)
            }
        };
        listeners.push(ListenerConfig { name, address, advertise, security, tls });
    }
    Ok(listeners)
}
