//! Who a client is: SASL on SASL listeners (`sasl`), with the secret
//! randomness its exchanges need (`random`). TLS itself is `net::tls`.
//! A client certificate's subject as a principal: `certificate`. What it
//! may do: `authorize`.

pub mod authorize;
pub mod certificate;
pub mod mechanism;
pub mod random;
pub mod sasl;
