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
//! SASL_PLAINTEXT and SASL_SSL listeners take `sasl-mechanisms`
//! (SCRAM-SHA-256 and SCRAM-SHA-512, both by default, and PLAIN); GSSAPI
//! and OAUTHBEARER are refused rather than accepted and left open. PLAIN
//! sends the password in the clear, so a SASL_PLAINTEXT listener enables it
//! only with `sasl-plain-without-tls = true`.

use super::parse::{parse_advertise, parse_host_port};
use super::{ConfigError, HostPort, Origin};
use crate::net::tls::TlsFiles;
use crate::security::mechanism::SaslMechanism;
use std::path::{Path, PathBuf};

/// The table name in the config file.
pub const LISTENER_TABLE: &str = "listener";
/// The name of the listener `--listen` opens.
pub const DEFAULT_LISTENER_NAME: &str = "PLAINTEXT";

const KEYS: [&str; 9] = [
    "name",
    "address",
    "advertise",
    "security-protocol",
    "sasl-mechanisms",
    "sasl-plain-without-tls",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub address: HostPort,
    /// `None`: the address's host with the port actually bound.
    pub advertise: Option<HostPort>,
    pub security: SecurityProtocol,
    /// Set exactly for SSL and SASL_SSL listeners.
    pub tls: Option<TlsFiles>,
    /// The SASL mechanisms enabled: empty exactly for PLAINTEXT and SSL.
    pub sasl_mechanisms: Vec<SaslMechanism>,
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
        let security = [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name() == protocol)
        .ok_or_else(|| {
            error(
                "security-protocol",
                format!("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {protocol:?}"),
            )
        })?;
        let sasl_mechanisms = match (security.sasl(), table.get("sasl-mechanisms")) {
            (false, None) => Vec::new(),
            (false, Some(_)) => {
                return Err(error("sasl-mechanisms", format!("a {protocol} listener has no SASL")))
            }
            (true, None) => SaslMechanism::DEFAULT.to_vec(),
            (true, Some(toml::Value::Array(names))) => {
                let mut mechanisms = Vec::new();
                for name in names {
                    let m = name.as_str().and_then(SaslMechanism::from_name).ok_or_else(|| {
                        error(
                            "sasl-mechanisms",
                            format!("{name} is not supported; SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN are"),
                        )
                    })?;
                    mechanisms.push(m);
                }
                if mechanisms.is_empty() {
                    return Err(error("sasl-mechanisms", "a SASL listener needs a mechanism".into()));
                }
                mechanisms
            }
            (true, Some(_)) => {
                return Err(error("sasl-mechanisms", "expected a list: [\"SCRAM-SHA-512\"]".into()))
            }
        };
        let plain_without_tls = match table.get("sasl-plain-without-tls") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(error("sasl-plain-without-tls", "expected true or false".into())),
        };
        if plain_without_tls && security != SecurityProtocol::SaslPlaintext {
            let problem = format!("only a SASL_PLAINTEXT listener takes it (this one is {protocol})");
            return Err(error("sasl-plain-without-tls", problem));
        }
        if security == SecurityProtocol::SaslPlaintext
            && sasl_mechanisms.contains(&SaslMechanism::Plain)
            && !plain_without_tls
        {
            let problem = "PLAIN sends passwords in the clear: use a SASL_SSL listener, or set \
                           sasl-plain-without-tls = true on this SASL_PLAINTEXT one"
                .to_string();
            return Err(error("sasl-mechanisms", problem));
        }
        let file = |field: &str| text(field).map(|v| v.map(PathBuf::from));
        let (cert, key_file, client_ca) = (file("tls-cert")?, file("tls-key")?, file("tls-client-ca")?);
        let tls = if security.tls() {
            let cert =
                cert.ok_or_else(|| error("tls-cert", format!("a {protocol} listener needs a certificate")))?;
            let key = key_file
                .ok_or_else(|| error("tls-key", format!("a {protocol} listener needs a private key")))?;
            let files = TlsFiles { cert, key, client_ca };
            // Read now, so a bad file is a configuration error.
            files.server_config().map_err(|e| error(e.field, e.problem))?;
            Some(files)
        } else {
            if let Some(field) =
                ["tls-cert", "tls-key", "tls-client-ca"].iter().find(|f| table.contains_key(**f))
            {
                return Err(error(field, "only an SSL or SASL_SSL listener takes TLS files".into()));
            }
            None
        };
        listeners.push(ListenerConfig { name, address, advertise, security, tls, sasl_mechanisms });
    }
    Ok(listeners)
}
