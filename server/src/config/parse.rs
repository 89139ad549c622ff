//! One parser per value, shared by the flags and the file: each returns the
//! problem as a message; the caller names the key and where it came from.

use super::{Controller, HostPort};
use ringtail_engine::broker::topics::PARTITIONS_PER_TOPIC_MAX;
use std::path::PathBuf;

/// Milliseconds as a Kafka i32 setting, at least `min`.
pub(super) fn parse_ms(value: &str, min: i32) -> Result<i32, String> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| format!("expected milliseconds, an integer in {min}..={}, got {value:?}", i32::MAX))
}

pub(super) fn default_address(value: &str) -> HostPort {
    parse_host_port(value).unwrap_or_else(|e| unreachable!("default address {value}: {e}"))
}

pub(super) fn parse_data_dir(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(PathBuf::from(value))
}

pub(super) fn parse_advertise(value: &str) -> Result<HostPort, String> {
    let address = parse_host_port(value)?;
    if address.is_unspecified() || address.port == 0 {
        return Err(format!("{address} is not an address clients can reach"));
    }
    Ok(address)
}

pub(super) fn parse_node_id(value: &str) -> Result<i32, String> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("expected a non-negative integer, got {value:?}"))
}

pub(super) fn parse_partitions(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=PARTITIONS_PER_TOPIC_MAX).contains(n))
        .ok_or_else(|| format!("expected an integer in 1..={PARTITIONS_PER_TOPIC_MAX}, got {value:?}"))
}

pub(super) fn parse_replication_factor(value: &str) -> Result<i16, String> {
    value
        .parse::<i16>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("expected a positive integer, got {value:?}"))
}

pub(super) fn parse_bytes(value: &str) -> Result<usize, String> {
    value.parse::<usize>().map_err(|_| format!("expected a number of bytes, got {value:?}"))
}

pub(super) fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

/// `HOST:PORT`, `[IPv6]:PORT`; port 0 asks the OS for a free one.
pub fn parse_host_port(value: &str) -> Result<HostPort, String> {
    let bad = || format!("expected HOST:PORT, got {value:?}");
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?.to_string(),
        None if host.contains(':') => return Err(format!("{}; write IPv6 addresses as [ADDR]:PORT", bad())),
        None => host.to_string(),
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok(HostPort { host, port })
}

/// `ID@HOST:PORT,...`. Until replication exists, the only quorum is this
/// node alone: naming any other node is refused rather than silently run as
/// a single node that other nodes think is their peer.
/// `ID@HOST:PORT,...`: the quorum's voters. This node need not be one (it
/// is a broker only then).
pub fn parse_controllers(value: &str) -> Result<Vec<Controller>, String> {
    let mut controllers: Vec<Controller> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        let bad = || format!("expected ID@HOST:PORT[,ID@HOST:PORT...], got {entry:?}");
        let (id, address) = entry.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.parse().ok().filter(|id| *id >= 0).ok_or_else(bad)?;
        let address = parse_host_port(address)?;
        if controllers.iter().any(|c| c.node_id == id) {
            return Err(format!("node {id} is listed twice"));
        }
        controllers.push(Controller { node_id: id, address });
    }
    Ok(controllers)
}

/// Principals separated by `;` (Kafka's `super.users`: a principal from a
/// certificate's name holds commas), each `User:NAME`.
pub(super) fn parse_principals(v: &str) -> Result<Vec<String>, String> {
    v.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some(("User", name)) if !name.is_empty() => Ok(p.to_string()),
            _ => Err(format!("expected principals as User:NAME separated by ';', got {p:?}")),
        })
        .collect()
}
