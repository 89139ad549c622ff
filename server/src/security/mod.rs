//! Who a client is: SASL on SASL listeners (`sasl`), with the secret
//! randomness its exchanges need (`random`). TLS itself is `net::tls`.
//! A client certificate's subject (`certificate`) as a principal, by
//! Kafka's mapping rules (`principal_mapping`). What it may do: `authorize`.

pub mod authorize;
pub mod certificate;
pub mod mechanism;
pub mod principal_mapping;
pub mod random;
pub mod sasl;
