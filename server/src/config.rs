//! `ringtail serve` configuration: the command line flags, the TOML file
//! with the same key names, and their resolution into a validated
//! `ServeConfig`. Flags override the file; the file overrides the defaults.
//!
//! Every value, from either source, goes through one parser per key, so a
//! bad value gets the same one-line message naming its key wherever it came
//! from.

use crate::limits::Limits;
use ringtail_engine::broker::topics::{PARTITIONS_PER_TOPIC_MAX, TOPIC_CONFIG_KEYS};
use ringtail_engine::group::GroupConfig;
use ringtail_engine::io::select::ParseIoChoiceError;
use ringtail_engine::io::IoChoice;
use ringtail_engine::log::{FlushPolicy, LogConfig};
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "./ringtail-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
pub const DEFAULT_CONTROLLER_LISTEN: &str = "127.0.0.1:9093";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9644";
pub const DEFAULT_NODE_ID: i32 = 1;
pub const DEFAULT_PARTITIONS: u32 = 1;
/// Largest config file read: a config is a few hundred bytes.
const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// The table of broker-wide topic defaults in the config file.
const TOPIC_DEFAULTS_TABLE: &str = "topic-defaults";

/// The flags of `ringtail serve`. Every one is optional here so that the
/// config file can supply it; defaults are applied in `resolve`.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeArgs {
    /// TOML config file: the flags' names as keys (`data-dir = "..."`) and a
    /// `[topic-defaults]` table of Kafka topic configs. Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./ringtail-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Kafka API listener [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address given to clients [default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// This node's id [default: 1]
    #[arg(long, value_name = "N")]
    pub node_id: Option<String>,
    /// Metadata quorum voters [default: this node alone]
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    pub controllers: Option<String>,
    /// Controller listener [default: 127.0.0.1:9093]
    #[arg(long, value_name = "HOST:PORT")]
    pub controller_listen: Option<String>,
    /// Prometheus /metrics listener [default: 127.0.0.1:9644]
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
    /// Storage I/O backend: auto, uring or std [default: auto]
    #[arg(long, value_name = "auto|uring|std")]
    pub io: Option<String>,
    /// When appends are fsynced: always, interval:MS or never [default: always]
    #[arg(long, value_name = "always|interval:MS|never")]
    pub flush: Option<String>,
    /// Partitions of topics created without a count [default: 1]
    #[arg(long, value_name = "N")]
    pub default_partitions: Option<String>,
    /// Replication factor of topics created without one [default: min(3, brokers)]
    #[arg(long, value_name = "N")]
    pub default_replication_factor: Option<String>,
    /// Create topics on first use through Metadata [default: true]
    #[arg(long, value_name = "true|false")]
    pub auto_create_topics: Option<String>,
    /// Partitions of __consumer_offsets when it is first created; fixed
    /// afterwards [default: 50]
    #[arg(long, value_name = "N")]
    pub offsets_topic_partitions: Option<String>,
    /// How long a new group's first rebalance waits for more members
    /// [default: 3000]
    #[arg(long, value_name = "MS")]
    pub group_initial_rebalance_delay_ms: Option<String>,
    /// Smallest session timeout a group member may ask for [default: 6000]
    #[arg(long, value_name = "MS")]
    pub group_min_session_timeout_ms: Option<String>,
    /// How long an empty group keeps its committed offsets (counted from
    /// when it became empty, or from its last commit) [default: 10080, 7 days]
    #[arg(long, value_name = "MINUTES")]
    pub offsets_retention_minutes: Option<String>,
    /// Memory for recently written log bytes, shared by all partitions;
    /// reads of older data go to the disk [default: a quarter of the
    /// host's memory]
    #[arg(long, value_name = "BYTES")]
    pub log_cache_bytes: Option<String>,
    /// Fault the log cache's memory in at start-up, before taking clients,
    /// instead of as data arrives (the JVM's AlwaysPreTouch); worth it where
    /// first-touch page faults are slow, as on many VMs [default: false]
    #[arg(long, value_name = "true|false")]
    pub log_cache_pretouch: Option<String>,
}

/// A quorum voter named by `--controllers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    pub node_id: i32,
    pub address: HostPort,
}

/// A `HOST:PORT` as given (the host is not resolved here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostPort {
    /// An address no client can connect to (0.0.0.0, ::).
    pub fn is_unspecified(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified())
    }
}

/// Everything `ringtail serve` runs with, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: HostPort,
    /// `None`: the listen host with the port actually bound.
    pub advertise: Option<HostPort>,
    pub node_id: i32,
    pub controllers: Vec<Controller>,
    pub controller_listen: HostPort,
    pub metrics_listen: HostPort,
    pub io: IoChoice,
    pub flush: FlushPolicy,
    pub default_partitions: u32,
    /// `None`: min(3, brokers).
    pub default_replication_factor: Option<i16>,
    pub auto_create_topics: bool,
    /// Broker-wide topic defaults, `flush` included.
    pub topic_defaults: LogConfig,
    /// The consumer-group coordinator's settings.
    pub group: GroupConfig,
    pub limits: Limits,
    /// Bytes of the broker's log cache.
    pub log_cache_bytes: usize,
    pub log_cache_pretouch: bool,
}

impl ServeConfig {
    /// The configuration `ringtail serve` with no arguments and no file runs.
    pub fn defaults() -> ServeConfig {
        resolve(&ServeArgs::default()).unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    File(PathBuf),
}

/// Bad configuration: `ringtail serve` prints it as one line and exits 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The key as written in the config file (`data-dir`, `retention.ms`),
    /// or the file itself when it cannot be read.
    pub key: String,
    pub origin: Option<Origin>,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(Origin::Flag) => write!(f, "bad config: --{}: {}", self.key, self.problem),
            Some(Origin::File(path)) => {
                write!(f, "bad config: {} in {}: {}", self.key, path.display(), self.problem)
            }
            None => write!(f, "bad config: {}: {}", self.key, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// The exit code for bad configuration (INTERFACE.md).
    pub const EXIT_CODE: u8 = 2;
}

/// A raw value and where it came from.
struct Raw {
    value: String,
    origin: Origin,
}

impl Raw {
    fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError { key: key.to_string(), origin: Some(self.origin.clone()), problem: problem.into() }
    }
}

/// The config file, flattened to strings per key.
#[derive(Default)]
struct FileValues {
    path: PathBuf,
    keys: toml::Table,
    topic_defaults: Vec<(String, String)>,
}

impl FileValues {
    fn load(path: &Path) -> Result<FileValues, ConfigError> {
        let file_error =
            |problem: String| ConfigError { key: path.display().to_string(), origin: None, problem };
        let len = std::fs::metadata(path).map_err(|e| file_error(format!("cannot read: {e}")))?.len();
        if len > CONFIG_FILE_BYTES_MAX {
            return Err(file_error(format!("{len} bytes is larger than {CONFIG_FILE_BYTES_MAX}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
        let mut keys: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = e.message().replace('\n', " ");
            match line {
                Some(line) => file_error(format!("not valid TOML at line {line}: {message}")),
                None => file_error(format!("not valid TOML: {message}")),
            }
        })?;
        let topic_defaults = match keys.remove(TOPIC_DEFAULTS_TABLE) {
            None => Vec::new(),
            Some(toml::Value::Table(table)) => {
                let mut flat = Vec::new();
                flatten(path, "", &table, &mut flat)?;
                flat
            }
            Some(_) => {
                return Err(ConfigError {
                    key: TOPIC_DEFAULTS_TABLE.into(),
                    origin: Some(Origin::File(path.to_path_buf())),
                    problem: "must be a table: [topic-defaults]".into(),
                })
            }
        };
        for key in keys.keys() {
            if !FILE_KEYS.contains(&key.as_str()) {
                return Err(ConfigError {
                    key: key.clone(),
                    origin: Some(Origin::File(path.to_path_buf())),
                    problem: format!(
                        "unknown key; known keys are {} and [topic-defaults]",
                        FILE_KEYS.join(", ")
                    ),
                });
            }
        }
        Ok(FileValues { path: path.to_path_buf(), keys, topic_defaults })
    }

    fn get(&self, key: &str) -> Result<Option<Raw>, ConfigError> {
        let origin = Origin::File(self.path.clone());
        match self.keys.get(key) {
            None => Ok(None),
            Some(value) => match scalar(value) {
                Some(value) => Ok(Some(Raw { value, origin })),
                None => Err(ConfigError {
                    key: key.into(),
                    origin: Some(origin),
                    problem: "expected a string, a number or a boolean".into(),
                }),
            },
        }
    }
}

/// Keys the file accepts at the top level: the flags' names.
const FILE_KEYS: [&str; 18] = [
    "data-dir",
    "listen",
    "advertise",
    "node-id",
    "controllers",
    "controller-listen",
    "metrics-listen",
    "io",
    "flush",
    "default-partitions",
    "default-replication-factor",
    "auto-create-topics",
    "offsets-topic-partitions",
    "group-initial-rebalance-delay-ms",
    "group-min-session-timeout-ms",
    "offsets-retention-minutes",
    "log-cache-bytes",
    "log-cache-pretouch",
];

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// TOML reads `retention.ms = 1` as a table `retention` holding `ms`; Kafka
/// users write config names unquoted, so nested tables are joined back into
/// dotted names.
fn flatten(
    path: &Path,
    prefix: &str,
    table: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => flatten(path, &name, inner, out)?,
            other => match scalar(other) {
                Some(v) => out.push((name, v)),
                None => {
                    return Err(ConfigError {
                        key: name,
                        origin: Some(Origin::File(path.to_path_buf())),
                        problem: "expected a string, a number or a boolean".into(),
                    })
                }
            },
        }
    }
    Ok(())
}

/// Merges the flags over the config file over the defaults and validates.
pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => FileValues::load(path)?,
        None => FileValues::default(),
    };
    // The flag's value if given, else the file's; parsed by `parse`, or
    // `default` when neither has the key.
    let get = |key: &str, flag: &Option<String>| -> Result<Option<Raw>, ConfigError> {
        match flag {
            Some(value) => Ok(Some(Raw { value: value.clone(), origin: Origin::Flag })),
            None => file.get(key),
        }
    };
    let data_dir =
        value("data-dir", get("data-dir", &args.data_dir)?, DEFAULT_DATA_DIR.into(), parse_data_dir)?;
    let listen =
        value("listen", get("listen", &args.listen)?, default_address(DEFAULT_LISTEN), parse_host_port)?;
    let advertise =
        value("advertise", get("advertise", &args.advertise)?, None, |v| parse_advertise(v).map(Some))?;
    if advertise.is_none() && listen.is_unspecified() {
        let problem =
            format!("listening on {listen} needs an address clients can reach: set --advertise HOST:PORT");
        return Err(ConfigError { key: "advertise".into(), origin: None, problem });
    }
    let node_id = value("node-id", get("node-id", &args.node_id)?, DEFAULT_NODE_ID, parse_node_id)?;
    let controllers = value("controllers", get("controllers", &args.controllers)?, Vec::new(), |v| {
        parse_controllers(v, node_id)
    })?;
    let controller_listen = value(
        "controller-listen",
        get("controller-listen", &args.controller_listen)?,
        default_address(DEFAULT_CONTROLLER_LISTEN),
        parse_host_port,
    )?;
    let metrics_listen = value(
        "metrics-listen",
        get("metrics-listen", &args.metrics_listen)?,
        default_address(DEFAULT_METRICS_LISTEN),
        parse_host_port,
    )?;
    let io = value("io", get("io", &args.io)?, IoChoice::Auto, |v| {
        v.parse().map_err(|e: ParseIoChoiceError| e.to_string())
    })?;
    let flush = value("flush", get("flush", &args.flush)?, FlushPolicy::Always, str::parse)?;
    let default_partitions = value(
        "default-partitions",
        get("default-partitions", &args.default_partitions)?,
        DEFAULT_PARTITIONS,
        parse_partitions,
    )?;
    let default_replication_factor = value(
        "default-replication-factor",
        get("default-replication-factor", &args.default_replication_factor)?,
        None,
        |v| parse_replication_factor(v).map(Some),
    )?;
    let auto_create_topics =
        value("auto-create-topics", get("auto-create-topics", &args.auto_create_topics)?, true, parse_bool)?;
    let topic_defaults = topic_defaults(&file, flush)?;
    let log_cache_bytes = value(
        "log-cache-bytes",
        get("log-cache-bytes", &args.log_cache_bytes)?,
        crate::memory::default_log_cache_bytes(),
        parse_bytes,
    )?;
    let log_cache_pretouch =
        value("log-cache-pretouch", get("log-cache-pretouch", &args.log_cache_pretouch)?, false, parse_bool)?;
    let group = group_config(
        get("offsets-topic-partitions", &args.offsets_topic_partitions)?,
        get("group-initial-rebalance-delay-ms", &args.group_initial_rebalance_delay_ms)?,
        get("group-min-session-timeout-ms", &args.group_min_session_timeout_ms)?,
        get("offsets-retention-minutes", &args.offsets_retention_minutes)?,
    )?;
    Ok(ServeConfig {
        data_dir,
        listen,
        advertise,
        node_id,
        controllers,
        controller_listen,
        metrics_listen,
        io,
        flush,
        default_partitions,
        default_replication_factor,
        auto_create_topics,
        topic_defaults,
        group,
        limits: Limits::default(),
        log_cache_bytes,
        log_cache_pretouch,
    })
}

/// The coordinator's settings: the engine's defaults (Kafka's), with the
/// four the flags set.
fn group_config(
    partitions: Option<Raw>,
    initial_delay: Option<Raw>,
    min_session: Option<Raw>,
    retention_minutes: Option<Raw>,
) -> Result<GroupConfig, ConfigError> {
    let defaults = GroupConfig::default();
    let offsets_topic_partitions =
        value("offsets-topic-partitions", partitions, defaults.offsets_topic_partitions, parse_partitions)?;
    let initial_rebalance_delay_ms =
        value("group-initial-rebalance-delay-ms", initial_delay, defaults.initial_rebalance_delay_ms, |v| {
            parse_ms(v, 0)
        })?;
    let key = "group-min-session-timeout-ms";
    let origin = min_session.as_ref().map(|raw| raw.origin.clone());
    let min_session_timeout_ms =
        value(key, min_session, defaults.min_session_timeout_ms, |v| parse_ms(v, 1))?;
    if min_session_timeout_ms > defaults.max_session_timeout_ms {
        let problem = format!(
            "must not exceed the largest session timeout, {} ms, got {min_session_timeout_ms}",
            defaults.max_session_timeout_ms
        );
        return Err(ConfigError { key: key.into(), origin, problem });
    }
    let default_minutes = defaults.offsets_retention_ms / 60_000;
    let offsets_retention_minutes =
        value("offsets-retention-minutes", retention_minutes, default_minutes, |v| {
            v.parse::<i64>()
                .ok()
                .filter(|m| (1..=i64::MAX / 60_000).contains(m))
                .ok_or_else(|| format!("expected minutes, a positive integer, got {v:?}"))
        })?;
    Ok(GroupConfig {
        offsets_retention_ms: offsets_retention_minutes * 60_000,
        offsets_topic_partitions,
        initial_rebalance_delay_ms,
        min_session_timeout_ms,
        ..defaults
    })
}

/// Milliseconds as a Kafka i32 setting, at least `min`.
fn parse_ms(value: &str, min: i32) -> Result<i32, String> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| format!("expected milliseconds, an integer in {min}..={}, got {value:?}", i32::MAX))
}

/// `raw` parsed by `parse`, with errors naming `key` and where the value
/// came from; `default` when the key was not given.
fn value<T>(
    key: &str,
    raw: Option<Raw>,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match raw {
        Some(raw) => parse(&raw.value).map_err(|problem| raw.error(key, problem)),
        None => Ok(default),
    }
}

fn default_address(value: &str) -> HostPort {
    parse_host_port(value).unwrap_or_else(|e| unreachable!("default address {value}: {e}"))
}

fn parse_data_dir(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(PathBuf::from(value))
}

fn parse_advertise(value: &str) -> Result<HostPort, String> {
    let address = parse_host_port(value)?;
    if address.is_unspecified() || address.port == 0 {
        return Err(format!("{address} is not an address clients can reach"));
    }
    Ok(address)
}

fn parse_node_id(value: &str) -> Result<i32, String> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("expected a non-negative integer, got {value:?}"))
}

fn parse_partitions(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=PARTITIONS_PER_TOPIC_MAX).contains(n))
        .ok_or_else(|| format!("expected an integer in 1..={PARTITIONS_PER_TOPIC_MAX}, got {value:?}"))
}

fn parse_replication_factor(value: &str) -> Result<i16, String> {
    value
        .parse::<i16>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("expected a positive integer, got {value:?}"))
}

fn parse_bytes(value: &str) -> Result<usize, String> {
    value.parse::<usize>().map_err(|_| format!("expected a number of bytes, got {value:?}"))
}

fn parse_bool(value: &str) -> Result<bool, String> {
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
fn parse_controllers(value: &str, node_id: i32) -> Result<Vec<Controller>, String> {
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
    if controllers.iter().any(|c| c.node_id != node_id) {
        return Err("multi-node clusters are not yet supported (replication issue)".into());
    }
    Ok(controllers)
}

/// The broker-wide topic defaults: the engine's log defaults, the flush
/// policy, then the file's `[topic-defaults]`.
fn topic_defaults(file: &FileValues, flush: FlushPolicy) -> Result<LogConfig, ConfigError> {
    let mut config = LogConfig { flush, ..LogConfig::default() };
    for (key, value) in &file.topic_defaults {
        let error = |problem: String| ConfigError {
            key: format!("{TOPIC_DEFAULTS_TABLE}.{key}"),
            origin: Some(Origin::File(file.path.clone())),
            problem,
        };
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(error(format!("unknown topic config; known are {}", TOPIC_CONFIG_KEYS.join(", "))));
        }
        // These are accepted per topic but the engine has no broker-wide
        // setting for them: only the value it behaves as can be a default.
        let fixed = match key.as_str() {
            "min.insync.replicas" => Some("1"),
            "cleanup.policy" => Some("delete"),
            "message.timestamp.type" => Some("CreateTime"),
            _ => None,
        };
        match fixed {
            Some(only) if value == only => {}
            Some(only) => {
                return Err(error(format!("only {only:?} is supported as a broker default, got {value:?}")))
            }
            None => config.set(key, value).map_err(error)?,
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn args() -> ServeArgs {
        ServeArgs::default()
    }

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    #[test]
    fn no_arguments_gives_the_documented_defaults() {
        let c = resolve(&args()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./ringtail-data"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.advertise, None);
        assert_eq!(c.node_id, 1);
        assert_eq!(c.log_cache_bytes, crate::memory::default_log_cache_bytes());
        assert!(c.log_cache_bytes > 0);
        assert!(c.controllers.is_empty());
        assert_eq!(c.controller_listen.to_string(), "127.0.0.1:9093");
        assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9644");
        assert_eq!(c.io, IoChoice::Auto);
        assert_eq!(c.flush, FlushPolicy::Always);
        assert_eq!(c.default_partitions, 1);
        assert_eq!(c.default_replication_factor, None);
        assert!(c.auto_create_topics);
        assert_eq!(c.topic_defaults, LogConfig::default());
        assert_eq!(c.group, GroupConfig::default());
        assert_eq!(c.group.offsets_topic_partitions, 50);
        assert_eq!(c.group.initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group.min_session_timeout_ms, 6000);
    }

    #[test]
    fn group_settings_come_from_flags_or_the_file() {
        let f = file("offsets-topic-partitions = 8\ngroup-min-session-timeout-ms = 2000\noffsets-retention-minutes = 60\n");
        let a = ServeArgs {
            config: Some(f.path().into()),
            group_initial_rebalance_delay_ms: Some("0".into()),
            group_min_session_timeout_ms: Some("1000".into()),
            ..args()
        };
        let c = resolve(&a).unwrap();
        assert_eq!(c.group.offsets_topic_partitions, 8);
        assert_eq!(c.group.initial_rebalance_delay_ms, 0);
        assert_eq!(c.group.min_session_timeout_ms, 1000);
        assert_eq!(c.group.offsets_retention_ms, 3_600_000);
        assert_eq!(c.group.max_session_timeout_ms, GroupConfig::default().max_session_timeout_ms);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let f = file(
            "data-dir = \"/tmp/from-file\"\nnode-id = 7\nflush = \"interval:50\"\nauto-create-topics = false\n\
             default-partitions = 3\nio = \"std\"\nlog-cache-bytes = 1048576\n",
        );
        let a = ServeArgs {
            config: Some(f.path().into()),
            node_id: Some("9".into()),
            io: Some("uring".into()),
            ..args()
        };
        let c = resolve(&a).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(c.node_id, 9);
        assert_eq!(c.io, IoChoice::Uring);
        assert_eq!(c.flush, FlushPolicy::Interval { ms: 50 });
        assert_eq!(c.topic_defaults.flush, FlushPolicy::Interval { ms: 50 });
        assert!(!c.auto_create_topics);
        assert_eq!(c.default_partitions, 3);
        assert_eq!(c.log_cache_bytes, 1 << 20);
    }

    #[test]
    fn topic_defaults_accept_dotted_names_quoted_or_not() {
        let f = file("[topic-defaults]\nretention.ms = 1000\n\"segment.bytes\" = \"4096\"\ncleanup.policy = \"delete\"\n");
        let c = resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap();
        assert_eq!(c.topic_defaults.retention_ms, Some(1000));
        assert_eq!(c.topic_defaults.segment_bytes, 4096);
    }

    #[test]
    fn bad_values_name_their_key_on_one_line() {
        let cases: [(ServeArgs, &str); 16] = [
            (ServeArgs { log_cache_pretouch: Some("yes".into()), ..args() }, "--log-cache-pretouch"),
            (ServeArgs { log_cache_bytes: Some("1GiB".into()), ..args() }, "--log-cache-bytes"),
            (
                ServeArgs { offsets_retention_minutes: Some("0".into()), ..args() },
                "--offsets-retention-minutes",
            ),
            (
                ServeArgs { offsets_topic_partitions: Some("0".into()), ..args() },
                "--offsets-topic-partitions",
            ),
            (
                ServeArgs { offsets_topic_partitions: Some("x".into()), ..args() },
                "--offsets-topic-partitions",
            ),
            (
                ServeArgs { group_initial_rebalance_delay_ms: Some("-1".into()), ..args() },
                "--group-initial-rebalance-delay-ms",
            ),
            (
                ServeArgs { group_min_session_timeout_ms: Some("0".into()), ..args() },
                "--group-min-session-timeout-ms",
            ),
            (
                ServeArgs { group_min_session_timeout_ms: Some("1800001".into()), ..args() },
                "--group-min-session-timeout-ms",
            ),
            (ServeArgs { flush: Some("sometimes".into()), ..args() }, "--flush"),
            (ServeArgs { io: Some("fast".into()), ..args() }, "--io"),
            (ServeArgs { node_id: Some("-3".into()), ..args() }, "--node-id"),
            (ServeArgs { listen: Some("nope".into()), ..args() }, "--listen"),
            (ServeArgs { default_partitions: Some("0".into()), ..args() }, "--default-partitions"),
            (
                ServeArgs { default_replication_factor: Some("x".into()), ..args() },
                "--default-replication-factor",
            ),
            (ServeArgs { auto_create_topics: Some("yes".into()), ..args() }, "--auto-create-topics"),
            (ServeArgs { metrics_listen: Some("127.0.0.1:99999".into()), ..args() }, "--metrics-listen"),
        ];
        for (a, key) in cases {
            let message = resolve(&a).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn file_errors_name_the_key_and_the_file() {
        for (contents, key) in [
            ("node-id = \"one\"\n", "node-id"),
            ("no-such-key = 1\n", "no-such-key"),
            ("[topic-defaults]\nretention.ms = \"soon\"\n", "topic-defaults.retention.ms"),
            ("[topic-defaults]\nflush = \"never\"\n", "topic-defaults.flush"),
            ("[topic-defaults]\nmin.insync.replicas = 2\n", "topic-defaults.min.insync.replicas"),
            ("listen = [1, 2]\n", "listen"),
        ] {
            let f = file(contents);
            let message =
                resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
            assert!(message.contains(&f.path().display().to_string()), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn invalid_toml_is_reported_with_its_line() {
        let f = file("data-dir = \"x\"\nlisten = \n");
        let message =
            resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap_err().to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_missing_config_file_is_a_config_error() {
        let a = ServeArgs { config: Some("/nonexistent/ringtail.toml".into()), ..args() };
        assert!(resolve(&a).unwrap_err().to_string().contains("/nonexistent/ringtail.toml"));
    }

    #[test]
    fn controllers_other_than_this_node_are_refused() {
        let a = ServeArgs { controllers: Some("1@127.0.0.1:9093,2@127.0.0.1:9193".into()), ..args() };
        let message = resolve(&a).unwrap_err().to_string();
        assert!(
            message.contains("multi-node clusters are not yet supported (replication issue)"),
            "{message}"
        );
        let alone = ServeArgs { controllers: Some("1@127.0.0.1:9093".into()), ..args() };
        assert_eq!(resolve(&alone).unwrap().controllers.len(), 1);
        let other = ServeArgs { controllers: Some("2@127.0.0.1:9093".into()), ..args() };
        assert!(resolve(&other).is_err());
    }

    #[test]
    fn an_unspecified_listen_address_needs_an_advertised_one() {
        let a = ServeArgs { listen: Some("0.0.0.0:9092".into()), ..args() };
        assert!(resolve(&a).unwrap_err().to_string().contains("--advertise"));
        let b = ServeArgs { advertise: Some("broker.example:9092".into()), ..a };
        assert_eq!(resolve(&b).unwrap().advertise.unwrap().to_string(), "broker.example:9092");
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(parse_host_port("[::1]:9092").unwrap(), HostPort { host: "::1".into(), port: 9092 });
        assert_eq!(parse_host_port("[::1]:9092").unwrap().to_string(), "[::1]:9092");
        assert!(parse_host_port("::1:9092").is_err());
        assert!(parse_host_port(":9092").is_err());
        assert!(parse_host_port("host:").is_err());
        assert!(parse_host_port("[::]:1").unwrap().is_unspecified());
    }
}
