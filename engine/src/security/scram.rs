//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses
//! them: what the broker keeps of a password, and the broker's side of the
//! exchange. The cryptography (HMAC, SHA-2, PBKDF2) is ring's and the
//! constant-time comparison subtle's; only the message flow is here. Randomness (the server's nonce) is handed in.
//!
//! The broker never holds a password: a credential is the salt, the
//! iteration count, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`. The client proves it
//! knows `ClientKey` without sending it; the broker proves it knows
//! `ServerKey` in its final message.

use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU32;
use subtle::ConstantTimeEq;

/// Kafka's minimum iteration count (and its default for new credentials).
pub const ITERATIONS_MIN: u32 = 4096;
/// Kafka's maximum.
pub const ITERATIONS_MAX: u32 = 16384;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's code in AlterUserScramCredentials and
    /// DescribeUserScramCredentials (0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash. Clients
    /// compute it (Kafka's AlterUserScramCredentials carries it, never the
    /// password).
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest().output_len()];
        let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut out);
        out
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), message).as_ref().to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker keeps of a user's password for one mechanism.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are as good as the password to an attacker who can
        // replay them against this broker: never in a log.
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramCredential {
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        iterations: u32,
        salted_password: &[u8],
    ) -> ScramCredential {
        let client_key = mechanism.mac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.mac(salted_password, b"Server Key"),
        }
    }

    pub fn from_password(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password, salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, iterations, &salted)
    }
}

/// Why an exchange failed. Said to the client only as "invalid
/// credentials" where telling more would help an attacker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    Malformed(String),
    /// Unknown user or wrong proof: the same to the client.
    InvalidCredentials,
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramError::Malformed(why) => write!(f, "malformed SCRAM message: {why}"),
            ScramError::InvalidCredentials => f.write_str("invalid credentials"),
        }
    }
}

/// The broker's side, after the client's first message.
pub struct ServerFirst {
    mechanism: ScramMechanism,
    user: String,
    /// `None` for an unknown user: the exchange goes on with a made-up
    /// salt and fails at the proof, as a wrong password does.
    credential: Option<ScramCredential>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Parses `name=value` attributes of a SCRAM message.
fn attribute(part: Option<&str>, name: char) -> Result<&str, ScramError> {
    let part = part.ok_or_else(|| ScramError::Malformed(format!("no {name}= attribute")))?;
    part.strip_prefix(name)
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| ScramError::Malformed(format!("expected {name}=, got {part:?}")))
}

/// A `saslname`: `=2C` and `=3D` stand for ',' and '='.
fn decode_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name".into())),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(what: &str, text: &str) -> Result<Vec<u8>, ScramError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ScramError::Malformed(format!("{what} is not base64")))
}

impl ServerFirst {
    /// Reads the client's first message and answers it. `lookup` finds the
    /// user's credential; `server_nonce` is fresh randomness (printable, no
    /// ','), `fake_salt` gives the salt shown for an unknown user.
    pub fn new(
        mechanism: ScramMechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: &str,
        fake_salt: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<ServerFirst, ScramError> {
        let text =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        // gs2 header: "n,," (no channel binding) or "y,," (client could,
        // server did not offer); "p=" asks for binding, which Kafka has none of.
        let bare = match text.split_once(",,") {
            Some(("n" | "y", bare)) => bare,
            Some((header, _)) if header.starts_with('p') => {
                return Err(ScramError::Malformed("channel binding is not supported".into()))
            }
            _ => return Err(ScramError::Malformed("bad gs2 header".into())),
        };
        let mut parts = bare.split(',');
        let user = decode_name(attribute(parts.next(), 'n')?)?;
        let client_nonce = attribute(parts.next(), 'r')?;
        if client_nonce.is_empty() {
            return Err(ScramError::Malformed("empty client nonce".into()));
        }
        // Extensions (Kafka's tokenauth=true for delegation tokens) are
        // not supported: refused rather than ignored.
        if let Some(extension) = parts.next() {
            return Err(ScramError::Malformed(format!("unsupported extension {extension:?}")));
        }
        let credential = lookup(&user);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (fake_salt(&user), ITERATIONS_MIN),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", b64(&salt));
        Ok(ServerFirst {
            mechanism,
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn message(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// Checks the client's final message; on success returns the server's
    /// final message (its signature), which the client checks in turn.
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let (without_proof, proof) =
            text.rsplit_once(",p=").ok_or_else(|| ScramError::Malformed("no proof".into()))?;
        let mut parts = without_proof.split(',');
        let binding = attribute(parts.next(), 'c')?;
        if !matches!(binding, "biws" | "eSws") {
            return Err(ScramError::Malformed("channel binding does not match the gs2 header".into()));
        }
        if attribute(parts.next(), 'r')? != self.nonce {
            return Err(ScramError::Malformed("the nonce is not the one this exchange began with".into()));
        }
        let proof = unb64("the proof", proof)?;
        let Some(credential) = self.credential else { return Err(ScramError::InvalidCredentials) };
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let signature = self.mechanism.mac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::InvalidCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !bool::from(self.mechanism.hash(&client_key).ct_eq(&credential.stored_key)) {
            return Err(ScramError::InvalidCredentials);
        }
        let server_signature = self.mechanism.mac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", b64(&server_signature)).into_bytes())
    }
}

/// The client's side, for `ringtail`'s own commands and for tests.
pub struct ClientFirst {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
}

impl ClientFirst {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &[u8], nonce: &str) -> ClientFirst {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ClientFirst {
            mechanism,
            password: password.to_vec(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
        }
    }

    pub fn message(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server's first message: `(client-final, the server
    /// signature to expect)`.
    pub fn answer(&self, server_first: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let mut parts = text.split(',');
        let nonce = attribute(parts.next(), 'r')?;
        if !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Malformed("the server's nonce does not extend ours".into()));
        }
        let salt = unb64("the salt", attribute(parts.next(), 's')?)?;
        let iterations: u32 = attribute(parts.next(), 'i')?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count".into()))?;
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.mac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = m.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = m.mac(&salted, b"Server Key");
        let expected = format!("v={}", b64(&m.mac(&server_key, auth_message.as_bytes())));
        Ok((format!("{without_proof},p={}", b64(&proof)).into_bytes(), expected.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange, SCRAM-SHA-256.
    #[test]
    fn the_rfc_7677_exchange() {
        let salt = unb64("salt", "W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::from_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let first = ServerFirst::new(
            ScramMechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            |user| (user == "user").then(|| credential.clone()),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |_| b"unused".to_vec(),
        )
        .unwrap();
        assert_eq!(
            first.message(),
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let last = first
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    fn exchange(
        mechanism: ScramMechanism,
        stored: &ScramCredential,
        user: &str,
        password: &[u8],
    ) -> Result<(), ScramError> {
        let client = ClientFirst::new(mechanism, user, password, "clientnonce");
        let server = ServerFirst::new(
            mechanism,
            &client.message(),
            |u| (u == "ali,ce=").then(|| stored.clone()),
            "servernonce",
            |_| b"fake".to_vec(),
        )?;
        let (client_final, expected) = client.answer(server.message())?;
        let server_final = server.finish(&client_final)?;
        assert_eq!(server_final, expected, "the client checks the server too");
        Ok(())
    }

    #[test]
    fn a_client_with_the_password_is_let_in_and_no_one_else() {
        for m in ScramMechanism::ALL {
            let stored = ScramCredential::from_password(m, b"secret", b"salty", ITERATIONS_MIN);
            assert_eq!(exchange(m, &stored, "ali,ce=", b"secret"), Ok(()));
            assert_eq!(exchange(m, &stored, "ali,ce=", b"guess"), Err(ScramError::InvalidCredentials));
            assert_eq!(exchange(m, &stored, "bob", b"secret"), Err(ScramError::InvalidCredentials));
        }
        let sha256 =
            ScramCredential::from_password(ScramMechanism::Sha256, b"secret", b"salty", ITERATIONS_MIN);
        assert_eq!(
            exchange(ScramMechanism::Sha512, &sha256, "ali,ce=", b"secret"),
            Err(ScramError::InvalidCredentials)
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let lookup = |_: &str| None;
        for bad in [
            &b"n=user,r=abc"[..],
            b"p=tls-unique,,n=u,r=a",
            b"n,,n=u",
            b"n,,n=u=,r=a",
            b"n,,n=u,r=a,t=x",
            b"\xff",
        ] {
            assert!(matches!(
                ServerFirst::new(ScramMechanism::Sha256, bad, lookup, "s", |_| b"f".to_vec()),
                Err(ScramError::Malformed(_))
            ));
        }
        let first =
            ServerFirst::new(ScramMechanism::Sha256, b"n,,n=u,r=a", lookup, "s", |_| b"f".to_vec()).unwrap();
        assert!(matches!(first.finish(b"c=biws,r=other,p=AAAA"), Err(ScramError::Malformed(_))));
    }
}
