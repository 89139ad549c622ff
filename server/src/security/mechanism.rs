//! The SASL mechanisms a listener may enable: SCRAM-SHA-256, SCRAM-SHA-512
//! and PLAIN.

use ringtail_engine::security::plain::PLAIN;
use ringtail_engine::security::scram::ScramMechanism;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Scram(ScramMechanism),
    /// The password in the clear (RFC 4616), checked against the user's
    /// SCRAM credential.
    Plain,
}

impl SaslMechanism {
    /// What a SASL listener enables unless its config says otherwise:
    /// the mechanisms that never send the password.
    pub const DEFAULT: [SaslMechanism; 2] =
        [SaslMechanism::Scram(ScramMechanism::Sha256), SaslMechanism::Scram(ScramMechanism::Sha512)];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::Plain => PLAIN,
        }
    }

    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        match name {
            PLAIN => Some(SaslMechanism::Plain),
            other => ScramMechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
