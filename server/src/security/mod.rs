//! Who a client is: SASL on SASL listeners (`sasl`), with the secret
//! randomness its exchanges need (`random`). TLS itself is `net::tls`.

pub mod random;
pub mod sasl;
