//! Kafka over TCP.
//!
//! - `frame`: the 4-byte big-endian length prefix, checked before a byte of
//!   the body is buffered.
//! - `connection`: one client connection: reads requests, runs several at a
//!   time, writes responses in request order.
//! - `listener`: the accept loop and its connection limit.
//! - `tracker`: counts live tasks so shutdown can wait for them.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod tracker;
