//! SASL/SCRAM from the client's side, for tests against a running server:
//! storing a password as a client does, and authenticating a connection.

use super::Client;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::security::scram::{ClientFirst, ScramMechanism};
use ringtail_server::serve::RunningServer;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// The address of the server's listener named `name`.
pub fn listener(server: &RunningServer, name: &str) -> SocketAddr {
    server.listeners.iter().find(|l| l.name == name).unwrap().addr
}

/// Stores `user`'s password for `mechanism` as a client does: the salted
/// password, never the password.
pub async fn set_password(server: &RunningServer, user: &str, mechanism: ScramMechanism, password: &str) {
    let salt = b"a salt of sixteen".to_vec();
    let upsertion = alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism.code())
        .with_iterations(4096)
        .with_salt(Bytes::from(salt.clone()))
        .with_salted_password(Bytes::from(mechanism.salted_password(password.as_bytes(), &salt, 4096)));
    let mut admin = Client::connect(server.kafka_addr).await;
    let response =
        admin.call(0, &AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion])).await;
    assert_eq!(response.results[0].error_code, 0, "{:?}", response.results[0].error_message);
}

/// Runs SaslHandshake and SaslAuthenticate: `Ok` once in, else the error
/// code the broker answered with.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<(), i16> {
    authenticate_for(client, mechanism, user, password).await.map(drop)
}

/// As `authenticate`, returning the session lifetime the broker gave
/// (SaslAuthenticate v2; 0: the session does not expire).
pub async fn authenticate_for<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<i64, i16> {
    let handshake =
        client.call(1, &SaslHandshakeRequest::default().with_mechanism(s(mechanism.name()))).await;
    if handshake.error_code != 0 {
        return Err(handshake.error_code);
    }
    let scram = ClientFirst::new(mechanism, user, password.as_bytes(), "a-client-nonce");
    let first = client
        .call(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(scram.message())))
        .await;
    if first.error_code != 0 {
        return Err(first.error_code);
    }
    let (last, expected) = scram.answer(&first.auth_bytes).unwrap();
    let done = client.call(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(last))).await;
    if done.error_code != 0 {
        let message = done.error_message.as_deref().unwrap_or_default();
        let known = message.contains("invalid credentials") || message.contains("during re-authentication");
        assert!(known, "{message}");
        return Err(done.error_code);
    }
    assert_eq!(done.auth_bytes.as_ref(), &expected[..], "the broker proved it knows the server key");
    Ok(done.session_lifetime_ms)
}
