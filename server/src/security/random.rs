//! Secret randomness for SASL: nonces, and the salt shown for a user that
//! does not exist. From the operating system (ring's `SystemRandom`), not
//! from the broker's seeded entropy, which is for ids and jitter, not
//! secrets. The simulator runs no SASL listener; were it to, this would be
//! its one ambient input.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::OnceLock;

fn fill(buf: &mut [u8]) {
    // SystemRandom fails only where the OS has no randomness to give
    // (getrandom unavailable), which no supported host is.
    if SystemRandom::new().fill(buf).is_err() {
        tracing::error!("the operating system gave no randomness");
    }
}

/// A fresh SCRAM server nonce: 24 random bytes, base64 (no ',').
pub fn nonce() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    fill(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The salt an unknown user is shown: the same for a name every time in
/// this process, as a real user's would be, so that asking twice does not
/// tell a made-up user from a real one.
pub fn fake_salt_for(user: &str) -> Vec<u8> {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut secret = [0u8; 32];
        fill(&mut secret);
        hmac::Key::new(hmac::HMAC_SHA256, &secret)
    });
    hmac::sign(key, user.as_bytes()).as_ref()[..16].to_vec()
}
