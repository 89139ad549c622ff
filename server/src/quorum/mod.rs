//! The metadata quorum in the server: the controller listener's frames
//! (`wire`), its connections (`transport`, mutual TLS in `tls`), a voter's
//! loop (`voter`) and the brokers' side (`client`). The simulator runs these same pieces on
//! madsim's TCP.

pub mod client;
pub mod tls;
pub mod transport;
pub mod voter;
pub mod wire;
