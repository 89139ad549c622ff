//! A TCP stream split into a read half and a write half, in both worlds.
//!
//! Real tokio splits a stream into owned halves with no lock between them;
//! madsim's simulated stream has no such split, so there the halves share
//! the stream through tokio's generic `io::split`. Writers must `flush`:
//! madsim's stream sends nothing until then (real tokio's flush is free).

#[cfg(not(madsim))]
pub use tokio::net::tcp::{OwnedReadHalf as ReadHalf, OwnedWriteHalf as WriteHalf};

/// The read half of a split stream.
#[cfg(madsim)]
pub type ReadHalf = tokio::io::ReadHalf<tokio::net::TcpStream>;
/// The write half of a split stream.
#[cfg(madsim)]
pub type WriteHalf = tokio::io::WriteHalf<tokio::net::TcpStream>;

/// Splits `stream` so that one task may read while another writes.
pub fn split(stream: tokio::net::TcpStream) -> (ReadHalf, WriteHalf) {
    #[cfg(not(madsim))]
    return stream.into_split();
    #[cfg(madsim)]
    return tokio::io::split(stream);
}
