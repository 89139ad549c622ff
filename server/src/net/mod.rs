//! Kafka over TCP.
//!
//! - `frame`: the 4-byte big-endian length prefix, checked before a byte of
//!   the body is buffered.
//! - `budget`: the server-wide budget of request bytes, not first come,
//!   first served.
//! - `body_pool`: buffers large request bodies are read into, reused.
//! - `connection`: one client connection: reads requests, runs several at a
//!   time, writes responses in request order.
//! - `listener`: the accept loops and the connection limits they share.
//! - `tls`: TLS for SSL listeners (rustls), reloaded on SIGHUP.
//! - `tracker`: counts live tasks so shutdown can wait for them.

pub mod body_pool;
pub mod budget;
pub mod connection;
pub mod frame;
pub mod listener;
pub mod tls;
pub mod tracker;
