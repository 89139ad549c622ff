//! The `ringtail` server: the engine's broker behind TCP and the Kafka wire
//! protocol, plus the admin and quick-start commands that talk to it as any
//! Kafka client would.
//!
//! - `config`: `ringtail serve` flags and the TOML config file, resolved and
//!   validated into a `ServeConfig`.
//! - `serve`: starting and stopping a server (also in-process, for tests).
//! - `net`: frames on TCP, the per-connection task, the accept loop.
//! - `protocol`: which APIs and versions we speak, request parsing (with the
//!   bounds check that protects kafka-protocol's decoder), response encoding.
//! - `handlers`: one file per Kafka API, each turning a request into engine
//!   calls and a response.
//! - `metrics`: Prometheus text over a minimal HTTP listener.
//! - `maintenance`: the broker's periodic upkeep (retention, flushes,
//!   checkpoints, reopening poisoned logs, cleaning compacted logs).
//! - `cleaner_pace`: the log cleaner's I/O rate limit.
//! - `memory`: the process's malloc policy and the log cache's default size.
//! - `host_memory`: the memory limits (host, cgroup v1/v2) and usage, read
//!   from `/proc` and `/sys/fs/cgroup`.
//! - `memory_pressure`: shrinking the log cache when usage nears a limit,
//!   and growing it back.
//! - `metered_disk`: the engine's disk wrapped to time fsyncs.
//! - `quorum`: the metadata quorum's controller listener, voter loop and client.
//! - `cluster`: a server as a cluster member: its voter, its broker's
//!   registration, heartbeats and image, the link for topic changes.
//! - `limits`: every bound the server enforces, in one place.
//! - `quotas`: users held to their produce and fetch byte rates.
//! - `logging`: the log subscriber, text or JSON lines.
//! - `shutdown`: the signal every task watches.
//! - `sd_notify`: telling systemd the server is ready (`Type=notify`).
//! - `clock`, `entropy`: the real time and randomness the engine is handed.

// The CLI runs on a real host only (signals, a process of its own).
#[cfg(not(madsim))]
pub mod cli;
// Every `tokio::select!` here is `biased;`: unbiased, tokio picks the branch
// polled first with a thread-local random generator that the simulator does
// not seed, and a seed would no longer replay the same run. The branches are
// listed with the work first and shutdown after, which polled in that order
// starves nothing.
pub mod cleaner_pace;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod disk_space;
pub mod entropy;
pub mod file_limit;
pub mod handlers;
pub mod host_memory;
// Reaps io_uring completions through tokio's reactor, which the simulator
// does not have (nor io_uring: it hands the server its own disk).
#[cfg(all(target_os = "linux", not(madsim)))]
pub mod io_reaper;
pub mod limits;
pub mod logging;
pub mod maintenance;
pub mod memory;
pub mod memory_pressure;
pub mod metered_disk;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod quorum;
pub mod quotas;
pub mod replication;
pub mod sd_notify;
pub mod security;
pub mod serve;
pub mod shutdown;
