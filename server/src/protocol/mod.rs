//! The Kafka wire protocol as the server speaks it.
//!
//! - `versions`: the APIs and versions advertised, which are exactly those
//!   implemented.
//! - `header`: the fixed request header prefix, read by hand before
//!   kafka-protocol sees a byte.
//! - `schema` and `bounds`: a walk over a request body that rejects array
//!   lengths the frame cannot hold, before kafka-protocol allocates for them.
//! - `request`: a frame in, a decoded request (or the reason to refuse it)
//!   out.
//! - `response`: a response body in, a length-prefixed frame out.
//! - `fetch_response`: the Fetch response encoded by hand, its record
//!   batches passed through as segments of the frame rather than copied.

pub mod bounds;
pub mod fetch_response;
pub mod header;
pub mod request;
pub mod response;
pub mod schema;
pub mod versions;
