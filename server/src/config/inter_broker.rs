//! How a cluster's brokers reach each other's Kafka listeners: followers
//! fetch from their leaders as clients do, on the listener named by
//! `inter-broker-listener` (Kafka's inter.broker.listener.name), with the
//! security `inter-broker-client-config` names: a properties file in the
//! names `ringtail --command-config` and librdkafka take
//! (`security.protocol`, `ssl.ca.location`, `sasl.mechanism`,
//! `sasl.username`, `sasl.password`), so the brokers' own credentials live
//! in a file an operator can keep readable by the broker alone.
//!
//! Checked at start-up: the listener exists, and the file says the
//! listener's security protocol (a TLS or SASL listener with a plaintext
//! client would only fail later, at every fetch). Under the acl authorizer
//! the followers' principal needs ClusterAction on the cluster (or to be a
//! super user); the server warns at start when it is no super user.

use super::listeners::{ListenerConfig, SecurityProtocol, DEFAULT_LISTENER_NAME};
use super::{ConfigError, Origin};
use ringtail_client::security::Security;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterBroker {
    /// The listener followers fetch from, by name.
    pub listener: String,
    /// The properties file of the followers' security; `None`: plaintext,
    /// unauthenticated.
    pub client_config: Option<PathBuf>,
}

impl Default for InterBroker {
    fn default() -> InterBroker {
        InterBroker { listener: DEFAULT_LISTENER_NAME.into(), client_config: None }
    }
}

impl InterBroker {
    /// The principal followers fetch as: the SASL user, else anonymous
    /// (the client presents no certificate).
    pub fn principal(security: &Security) -> String {
        match &security.sasl {
            Some(login) => format!("User:{}", login.user),
            None => crate::security::sasl::ANONYMOUS.to_string(),
        }
    }

    /// The followers' security, read from `client_config`.
    pub fn security(&self) -> Result<Security, String> {
        match &self.client_config {
            None => Ok(Security::default()),
            Some(path) => Security::from_properties_file(path),
        }
    }
}

/// The value given, checked against the listeners and the authorizer.
pub(super) fn check(
    listener: (String, Option<Origin>),
    client_config: Option<(PathBuf, Origin)>,
    listeners: &[ListenerConfig],
) -> Result<InterBroker, ConfigError> {
    let (name, name_origin) = listener;
    let error =
        |key: &str, origin: Option<Origin>, problem: String| ConfigError { key: key.into(), origin, problem };
    let protocol = match listeners.iter().find(|l| l.name == name) {
        Some(l) => l.security,
        None if name == DEFAULT_LISTENER_NAME => SecurityProtocol::Plaintext,
        None => {
            let mut names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
            names.insert(0, DEFAULT_LISTENER_NAME);
            let problem = format!("no listener named {name:?}: the listeners are {}", names.join(", "));
            return Err(error("inter-broker-listener", name_origin, problem));
        }
    };
    let security = match &client_config {
        None => Security::default(),
        Some((path, origin)) => Security::from_properties_file(path)
            .map_err(|problem| error("inter-broker-client-config", Some(origin.clone()), problem))?,
    };
    let said = match (security.tls.is_some(), security.sasl.is_some()) {
        (false, false) => SecurityProtocol::Plaintext,
        (true, false) => SecurityProtocol::Ssl,
        (false, true) => SecurityProtocol::SaslPlaintext,
        (true, true) => SecurityProtocol::SaslSsl,
    };
    if said != protocol {
        let origin = client_config.as_ref().map(|(_, o)| o.clone()).or(name_origin);
        let problem = format!(
            "listener {name} is {}, but the followers' client config says {} \
             (set security.protocol in inter-broker-client-config)",
            protocol.name(),
            said.name()
        );
        return Err(error("inter-broker-client-config", origin, problem));
    }
    Ok(InterBroker { listener: name, client_config: client_config.map(|(path, _)| path) })
}
