//! How the client reaches a secured listener: TLS (rustls, trusting the CA
//! file it is given) and SASL/SCRAM after the ApiVersions exchange, as
//! librdkafka's `security.protocol`, `ssl.ca.location`, `sasl.mechanism`,
//! `sasl.username` and `sasl.password` configure it (`from_properties`).

use ringtail_engine::security::scram::ScramMechanism;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// TLS and SASL settings; the default is neither (PLAINTEXT).
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<TlsConnector>,
    pub sasl: Option<SaslLogin>,
}

/// A SASL login.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: LoginMechanism,
    pub user: String,
    pub password: String,
}

/// How a login proves the password: SCRAM (the password never crosses the
/// wire), or PLAIN (it does: over TLS, or where the listener allows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMechanism {
    Scram(ScramMechanism),
    Plain,
}

impl LoginMechanism {
    /// The name SaslHandshake sends.
    pub fn name(self) -> &'static str {
        match self {
            LoginMechanism::Scram(m) => m.name(),
            LoginMechanism::Plain => "PLAIN",
        }
    }

    pub fn from_name(name: &str) -> Option<LoginMechanism> {
        match name {
            "PLAIN" => Some(LoginMechanism::Plain),
            _ => ScramMechanism::from_name(name).map(LoginMechanism::Scram),
        }
    }
}

impl fmt::Display for LoginMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| (s.mechanism.name(), s.user.as_str())))
            .finish()
    }
}

impl Security {
    /// From a properties file (`from_properties`); errors name the file.
    pub fn from_properties_file(path: &Path) -> Result<Security, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Security::from_properties(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// From librdkafka-style properties (`key=value` lines, `#` comments):
    /// the keys above; others are refused, so a typo is not silently a
    /// plaintext connection.
    pub fn from_properties(text: &str) -> Result<Security, String> {
        let mut protocol = "PLAINTEXT".to_string();
        let (mut ca, mut mechanism, mut user, mut password) = (None, None, None, None);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) =
                line.split_once('=').ok_or_else(|| format!("line {}: expected key=value", n + 1))?;
            let value = value.trim().to_string();
            match key.trim() {
                "security.protocol" => protocol = value.to_ascii_uppercase(),
                "ssl.ca.location" => ca = Some(value),
                "sasl.mechanism" | "sasl.mechanisms" => mechanism = Some(value),
                "sasl.username" => user = Some(value),
                "sasl.password" => password = Some(value),
                other => return Err(format!("line {}: unknown key {other}", n + 1)),
            }
        }
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(format!(
                    "security.protocol {other} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        let tls = match (tls, ca) {
            (true, Some(ca)) => Some(tls_connector(Path::new(&ca))?),
            (true, None) => return Err(format!("security.protocol {protocol} needs ssl.ca.location")),
            (false, Some(_)) => {
                return Err(format!("ssl.ca.location given, but security.protocol is {protocol}"))
            }
            (false, None) => None,
        };
        let sasl = if sasl {
            let mechanism = mechanism.unwrap_or_else(|| "SCRAM-SHA-512".into());
            let mechanism = LoginMechanism::from_name(&mechanism).ok_or_else(|| {
                format!("sasl.mechanism {mechanism} is not SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN")
            })?;
            let user = user.ok_or("SASL needs sasl.username")?;
            let password = password.ok_or("SASL needs sasl.password")?;
            Some(SaslLogin { mechanism, user, password })
        } else {
            if mechanism.is_some() || user.is_some() || password.is_some() {
                return Err(format!("sasl.* keys given, but security.protocol is {protocol}"));
            }
            None
        };
        Ok(Security { tls, sasl })
    }
}

/// A TLS client trusting the certificates in the PEM file `ca`.
pub fn tls_connector(ca: &Path) -> Result<TlsConnector, String> {
    let error = |e: &dyn fmt::Display| format!("ssl.ca.location {}: {e}", ca.display());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| error(&e))? {
        roots.add(cert.map_err(|e| error(&e))?).map_err(|e| error(&e))?;
    }
    if roots.is_empty() {
        return Err(error(&"holds no PEM certificate"));
    }
    // ring, as the server uses (see the server's net/tls.rs for why).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_say_what_to_do_or_why_not() {
        let s = Security::from_properties(
            "# a comment\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=alice\nsasl.password=a=b\n",
        )
        .unwrap();
        let login = s.sasl.unwrap();
        assert_eq!(
            (login.mechanism, login.user.as_str(), login.password.as_str()),
            (LoginMechanism::Scram(ScramMechanism::Sha256), "alice", "a=b")
        );
        assert!(s.tls.is_none());
        assert!(Security::from_properties("").unwrap().sasl.is_none());
        let plain =
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=a\nsasl.password=b";
        assert_eq!(Security::from_properties(plain).unwrap().sasl.unwrap().mechanism, LoginMechanism::Plain);
        for (text, why) in [
            ("security.protocol=SSL", "needs ssl.ca.location"),
            ("security.protocol=SASL_PLAINTEXT\nsasl.username=a", "sasl.password"),
            ("sasl.username=a", "security.protocol is PLAINTEXT"),
            (
                "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\nsasl.username=a\nsasl.password=b",
                "is not SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN",
            ),
            ("bootstrap.servers=x", "unknown key"),
            ("security.protocol=SSL\nssl.ca.location=/no/such/file", "/no/such/file"),
        ] {
            let e = Security::from_properties(text).err().unwrap_or_default();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
