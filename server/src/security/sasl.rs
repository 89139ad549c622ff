//! A connection's SASL state, as Kafka's SaslServerAuthenticator keeps it.
//!
//! On a SASL listener a client may send ApiVersions, then SaslHandshake
//! (v1, naming a mechanism this listener enables), then SaslAuthenticate
//! until the mechanism's exchange ends (SCRAM: two rounds; PLAIN: one);
//! nothing else is served before that,
//! and a request out of turn closes the connection. A failed exchange is
//! answered with SASL_AUTHENTICATION_FAILED and the connection is closed
//! after a delay, so that guessing passwords costs a connection and time
//! per guess. On other listeners a SASL request is out of turn
//! (ILLEGAL_SASL_STATE).
//!
//! Re-authentication (KIP-368): with `connections-max-reauth-ms` set, a
//! session lasts that long (told to the client in SaslAuthenticate v1+ as
//! its session lifetime); the client authenticates again on the same
//! connection before then, with the same mechanism and as the same
//! principal, or the connection is closed at its next request after
//! expiry. Without it sessions never expire, though a client may still
//! re-authenticate.
//!
//! Invariants: `admit` returns `Dispatch` for a request other than
//! ApiVersions only in the `Authenticated` state, and never after that
//! state's expiry; a re-authentication ends with the principal it began
//! with or with the connection closed.

use super::mechanism::SaslMechanism;
use super::random;
use crate::handlers::Context;
use crate::protocol::request::Request;
use kafka_protocol::messages::{RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use ringtail_engine::security::plain;
use ringtail_engine::security::scram::{ScramError, ScramMechanism, ServerFirst};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The principal of a client that did not authenticate (Kafka's).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// What to do with a request.
pub enum Admit {
    /// Serve it as usual.
    Dispatch,
    /// Answer it with this, now.
    Answer(ResponseKind),
    /// Answer it with this, then close the connection (after the failed
    /// authentication delay): the reason is for the log.
    AnswerAndClose(ResponseKind, String),
    /// Close the connection without an answer.
    Close(String),
}

enum State {
    AwaitingHandshake,
    Handshaken(SaslMechanism),
    ScramFirstSent(ScramMechanism, Box<ServerFirst>),
    Authenticated {
        principal: Arc<str>,
        /// `None` on a listener without SASL.
        mechanism: Option<SaslMechanism>,
        /// When the session ends unless renewed; `None`: never.
        expires: Option<Instant>,
    },
}

pub struct SaslSession {
    /// Empty on a listener without SASL.
    mechanisms: Vec<SaslMechanism>,
    state: State,
    /// How long an authentication lasts; `None`: for the connection's life.
    lifetime: Option<Duration>,
    /// During a re-authentication: who the client was, and how.
    renewing: Option<(Arc<str>, SaslMechanism)>,
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

impl SaslSession {
    /// A connection's state as it is accepted on a listener enabling
    /// `mechanisms` (none: not a SASL listener). `certified`: the principal
    /// of the client's TLS certificate, which is who it is on a listener
    /// without SASL (`User:ANONYMOUS` without one, as in Kafka).
    pub fn new(
        mechanisms: Vec<SaslMechanism>,
        lifetime: Option<Duration>,
        certified: Option<String>,
    ) -> SaslSession {
        let state = if mechanisms.is_empty() {
            let principal: Arc<str> = certified.map_or_else(|| ANONYMOUS.into(), Into::into);
            State::Authenticated { principal, mechanism: None, expires: None }
        } else {
            State::AwaitingHandshake
        };
        SaslSession { mechanisms, state, lifetime, renewing: None }
    }

    /// The client's principal, once authenticated.
    pub fn principal(&self) -> Option<&Arc<str>> {
        match &self.state {
            State::Authenticated { principal, .. } => Some(principal),
            _ => None,
        }
    }

    fn names(&self) -> Vec<StrBytes> {
        self.mechanisms.iter().map(|m| str_bytes(m.name())).collect()
    }

    pub fn admit(&mut self, ctx: &Context, request: &Request) -> Admit {
        let expired =
            matches!(&self.state, State::Authenticated { expires: Some(at), .. } if Instant::now() >= *at);
        if expired {
            return Admit::Close(format!("{:?} request after the SASL session expired", request.api_key));
        }
        match (&request.body, &self.state) {
            (RequestKind::ApiVersions(_), _) => Admit::Dispatch,
            (RequestKind::SaslHandshake(r), State::Authenticated { principal, mechanism: Some(m), .. }) => {
                // KIP-368: the same mechanism again, on the same connection.
                let response = SaslHandshakeResponse::default().with_mechanisms(self.names());
                if SaslMechanism::from_name(r.mechanism.as_str()) != Some(*m) {
                    let reason = format!(
                        "re-authentication with {:?} after {m}: the mechanism may not change",
                        r.mechanism.as_str()
                    );
                    let refused = response.with_error_code(ResponseError::IllegalSaslState.code());
                    return Admit::AnswerAndClose(ResponseKind::SaslHandshake(refused), reason);
                }
                self.renewing = Some((principal.clone(), *m));
                self.state = State::Handshaken(*m);
                Admit::Answer(ResponseKind::SaslHandshake(response))
            }
            (RequestKind::SaslHandshake(r), State::AwaitingHandshake) => {
                let response = SaslHandshakeResponse::default().with_mechanisms(self.names());
                match SaslMechanism::from_name(r.mechanism.as_str()).filter(|m| self.mechanisms.contains(m)) {
                    Some(m) => {
                        self.state = State::Handshaken(m);
                        Admit::Answer(ResponseKind::SaslHandshake(response))
                    }
                    None => Admit::AnswerAndClose(
                        ResponseKind::SaslHandshake(
                            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
                        ),
                        format!("SASL mechanism {:?} is not enabled on this listener", r.mechanism.as_str()),
                    ),
                }
            }
            (RequestKind::SaslAuthenticate(r), State::Handshaken(SaslMechanism::Plain)) => {
                match plain::authenticate(&r.auth_bytes, |user, m| ctx.broker.scram_credential(user, m)) {
                    Ok(user) => {
                        self.authenticated(ctx, request, SaslMechanism::Plain, &user, bytes::Bytes::new())
                    }
                    Err(e) => self.failed(ctx, SaslMechanism::Plain, None, e),
                }
            }
            (RequestKind::SaslAuthenticate(r), State::Handshaken(SaslMechanism::Scram(m))) => {
                let mechanism = *m;
                let first = ServerFirst::new(
                    mechanism,
                    &r.auth_bytes,
                    |user| ctx.broker.scram_credential(user, mechanism),
                    &random::nonce(),
                    random::fake_salt_for,
                );
                match first {
                    Ok(first) => {
                        let answer = SaslAuthenticateResponse::default()
                            .with_auth_bytes(bytes::Bytes::copy_from_slice(first.message()));
                        self.state = State::ScramFirstSent(mechanism, Box::new(first));
                        Admit::Answer(ResponseKind::SaslAuthenticate(answer))
                    }
                    Err(e) => self.failed(ctx, SaslMechanism::Scram(mechanism), None, e),
                }
            }
            (RequestKind::SaslAuthenticate(r), State::ScramFirstSent(..)) => {
                // Taken out: the exchange ends here, whatever its outcome.
                let State::ScramFirstSent(mechanism, first) =
                    std::mem::replace(&mut self.state, State::AwaitingHandshake)
                else {
                    return Admit::Close("SASL state lost".into());
                };
                let user = first.user().to_string();
                let mechanism = SaslMechanism::Scram(mechanism);
                match first.finish(&r.auth_bytes) {
                    Ok(last) => self.authenticated(ctx, request, mechanism, &user, bytes::Bytes::from(last)),
                    Err(e) => self.failed(ctx, mechanism, Some(&user), e),
                }
            }
            (RequestKind::SaslHandshake(_), _) => {
                let response = SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_mechanisms(self.names());
                Admit::AnswerAndClose(
                    ResponseKind::SaslHandshake(response),
                    self.out_of_turn("SaslHandshake"),
                )
            }
            (RequestKind::SaslAuthenticate(_), _) => {
                let response = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(str_bytes("unexpected SaslAuthenticate")));
                Admit::AnswerAndClose(
                    ResponseKind::SaslAuthenticate(response),
                    self.out_of_turn("SaslAuthenticate"),
                )
            }
            (_, State::Authenticated { .. }) => Admit::Dispatch,
            (_, _) if self.renewing.is_some() => {
                Admit::Close(format!("{:?} request during SASL re-authentication", request.api_key))
            }
            (_, _) => Admit::Close(format!("{:?} request before SASL authentication", request.api_key)),
        }
    }

    fn out_of_turn(&self, api: &str) -> String {
        match self.state {
            State::Authenticated { .. } if self.mechanisms.is_empty() => {
                format!("{api} on a listener without SASL")
            }
            State::Authenticated { .. } => format!("{api} after authentication, without a handshake"),
            _ => format!("{api} out of turn in the SASL exchange"),
        }
    }

    fn authenticated(
        &mut self,
        ctx: &Context,
        request: &Request,
        mechanism: SaslMechanism,
        user: &str,
        last: bytes::Bytes,
    ) -> Admit {
        let principal: Arc<str> = format!("User:{user}").into();
        if let Some((before, _)) = self.renewing.take() {
            if before != principal {
                ctx.metrics.sasl_authentication_failures.fetch_add(1, Ordering::Relaxed);
                let message =
                    format!("Cannot change principals during re-authentication from {before}: {principal}");
                let answer = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(str_bytes(message.clone())));
                return Admit::AnswerAndClose(ResponseKind::SaslAuthenticate(answer), message);
            }
        }
        ctx.metrics.sasl_authentications.fetch_add(1, Ordering::Relaxed);
        tracing::info!(peer = ?request.peer, %principal, %mechanism, "SASL authentication succeeded");
        let expires = self.lifetime.map(|l| Instant::now() + l);
        self.state = State::Authenticated { principal, mechanism: Some(mechanism), expires };
        // Version 0 has no lifetime field; 0 there means "never expires".
        let lifetime_ms = self.lifetime.map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
        let answer =
            SaslAuthenticateResponse::default().with_auth_bytes(last).with_session_lifetime_ms(lifetime_ms);
        Admit::Answer(ResponseKind::SaslAuthenticate(answer))
    }

    fn failed(
        &mut self,
        ctx: &Context,
        mechanism: SaslMechanism,
        user: Option<&str>,
        e: ScramError,
    ) -> Admit {
        ctx.metrics.sasl_authentication_failures.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
        );
        let answer = SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
            .with_error_message(Some(str_bytes(message)));
        let reason = match user {
            Some(user) => format!("SASL {mechanism} authentication of {user:?} failed: {e}"),
            None => format!("SASL {mechanism} authentication failed: {e}"),
        };
        Admit::AnswerAndClose(ResponseKind::SaslAuthenticate(answer), reason)
    }
}
