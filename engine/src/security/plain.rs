//! SASL PLAIN (RFC 4616): the client sends its user name and password, and
//! the broker checks the password against the user's SCRAM credential, so
//! one credential store serves both (Kafka's PLAIN reads passwords from its
//! JAAS file instead). The password crosses the network in the clear
//! unless TLS carries it: the server offers PLAIN on a SASL_PLAINTEXT
//! listener only when its config says so.
//!
//! Checking costs one PBKDF2 derivation at the credential's iteration
//! count, and an unknown user costs the same, so the time taken does not
//! tell real users from made-up ones.

use super::scram::{ScramCredential, ScramError, ScramMechanism, ITERATIONS_MIN};
use subtle::ConstantTimeEq;

/// The SASL mechanism name.
pub const PLAIN: &str = "PLAIN";

/// Longest message taken: a user name and a password, not a document.
const MESSAGE_BYTES_MAX: usize = 4096;

/// Checks a PLAIN message (`[authzid] NUL authcid NUL passwd`) and returns
/// the user it authenticates. `credential` looks a user's credential up by
/// mechanism; SCRAM-SHA-512's is preferred when the user has both.
pub fn authenticate(
    message: &[u8],
    credential: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
) -> Result<String, ScramError> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(ScramError::Malformed(format!("a PLAIN message of {} bytes", message.len())));
    }
    let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ScramError::Malformed("expected authzid NUL user NUL password".into()));
    };
    if user.is_empty() || password.is_empty() {
        return Err(ScramError::Malformed("an empty user name or password".into()));
    }
    if !authzid.is_empty() && authzid != user {
        // Kafka's PLAIN refuses to act for another user too.
        return Err(ScramError::Malformed("an authorization id other than the user".into()));
    }
    let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| credential(user, m).map(|c| (m, c)));
    let Some((mechanism, stored)) = found else {
        // The derivation a real user's check would cost, and a failure.
        let _ = ScramMechanism::Sha512.salted_password(password.as_bytes(), user.as_bytes(), ITERATIONS_MIN);
        return Err(ScramError::InvalidCredentials);
    };
    let derived =
        ScramCredential::from_password(mechanism, password.as_bytes(), &stored.salt, stored.iterations);
    if bool::from(derived.stored_key.ct_eq(&stored.stored_key)) {
        Ok(user.to_string())
    } else {
        Err(ScramError::InvalidCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(user: &str) -> Option<ScramCredential> {
        (user == "alice")
            .then(|| ScramCredential::from_password(ScramMechanism::Sha256, b"pw", b"salt", 4096))
    }

    #[test]
    fn the_right_password_and_nothing_else() {
        let lookup = |user: &str, m| store(user).filter(|_| m == ScramMechanism::Sha256);
        assert_eq!(authenticate(b"\0alice\0pw", lookup), Ok("alice".into()));
        assert_eq!(authenticate(b"alice\0alice\0pw", lookup), Ok("alice".into()));
        assert_eq!(authenticate(b"\0alice\0wrong", lookup), Err(ScramError::InvalidCredentials));
        assert_eq!(authenticate(b"\0mallory\0pw", lookup), Err(ScramError::InvalidCredentials));
        for malformed in [
            &b"alice\0pw"[..],
            b"\0alice\0pw\0more",
            b"bob\0alice\0pw",
            b"\0\0pw",
            b"\0alice\0",
            b"\xff\0a\0b",
        ] {
            assert!(
                matches!(authenticate(malformed, lookup), Err(ScramError::Malformed(_))),
                "{malformed:?}"
            );
        }
        assert!(matches!(authenticate(&vec![b'a'; 5000], lookup), Err(ScramError::Malformed(_))));
    }
}
