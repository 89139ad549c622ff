//! `ringtail serve` configuration: the command line flags, the TOML file
//! with the same key names, and their resolution into a validated
//! `ServeConfig`. Flags override the file; the file overrides the defaults.
//!
//! Every value, from either source, goes through one parser per key, so a
//! bad value gets the same one-line message naming its key wherever it came
//! from.

pub mod example;
mod file;
pub mod inter_broker;
pub mod listeners;
mod parse;
#[cfg(test)]
mod tests;

use crate::limits::Limits;
use crate::logging::LogFormat;
use crate::quorum::tls::ControllerTlsFiles;
use crate::security::authorize::AuthorizerKind;
use crate::security::principal_mapping::PrincipalMapping;
use file::{topic_defaults, FileValues};
pub use inter_broker::InterBroker;
pub use listeners::{ListenerConfig, SecurityProtocol};
use parse::{
    default_address, parse_advertise, parse_bool, parse_bytes, parse_data_dir, parse_ms, parse_node_id,
    parse_partitions, parse_principals, parse_replication_factor,
};
pub use parse::{parse_controllers, parse_host_port};
use ringtail_engine::broker::TopicLimits;
use ringtail_engine::group::GroupConfig;
use ringtail_engine::io::select::ParseIoChoiceError;
use ringtail_engine::io::IoChoice;
use ringtail_engine::log::cleaner::CleanerSettings;
use ringtail_engine::log::{FlushPolicy, LogConfig};
use ringtail_engine::replica::ReplicationConfig;
use std::fmt;
use std::path::PathBuf;

pub const DEFAULT_DATA_DIR: &str = "./ringtail-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
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
    /// Where this node's controller voter listens [default: its address in
    /// --controllers]
    #[arg(long, value_name = "HOST:PORT")]
    pub controller_listen: Option<String>,
    /// This node's certificate chain (PEM) on the controller listener: with
    /// the two below, voters and brokers talk over mutual TLS, each
    /// presenting a certificate the CA signed [default: no TLS, plaintext]
    #[arg(long, value_name = "FILE")]
    pub controller_tls_cert: Option<String>,
    /// The private key (PEM) of --controller-tls-cert
    #[arg(long, value_name = "FILE")]
    pub controller_tls_key: Option<String>,
    /// The CA (PEM) that signed every controller and broker certificate of
    /// the cluster; voters' certificates must name the hosts in --controllers
    #[arg(long, value_name = "FILE")]
    pub controller_tls_ca: Option<String>,
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
    /// Members one consumer group may have (Kafka's group.max.size); a
    /// join beyond it gets GROUP_MAX_SIZE_REACHED [default: 2147483647, no
    /// limit, as Kafka]
    #[arg(long, value_name = "MEMBERS")]
    pub group_max_size: Option<String>,
    /// Partitions the broker holds at most (of all topics); CreateTopics,
    /// CreatePartitions and auto-creation beyond it get POLICY_VIOLATION.
    /// Each partition keeps at least one file open [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_partitions: Option<String>,
    /// Smallest segment.bytes a topic may set (Kafka 4.0's floor)
    /// [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes_min: Option<String>,
    /// Smallest segment.ms a topic may set [default: 1000]
    #[arg(long, value_name = "MS")]
    pub segment_ms_min: Option<String>,
    /// Sealed segment files held open at once, broker-wide; the least
    /// recently read are closed and opened again when read. Each
    /// partition's active segment is open besides [default: 4096]
    #[arg(long, value_name = "FILES")]
    pub open_segments_max: Option<String>,
    /// How long an empty group keeps its committed offsets (counted from
    /// when it became empty, or from its last commit) [default: 10080, 7 days]
    #[arg(long, value_name = "MINUTES")]
    pub offsets_retention_minutes: Option<String>,
    /// Memory for recently written log bytes, shared by all partitions;
    /// reads of older data go to the disk. Shrinks under memory pressure
    /// and grows back to this after [default: a quarter of the host's
    /// memory, or of the cgroup's limit when smaller]
    #[arg(long, value_name = "BYTES")]
    pub log_cache_bytes: Option<String>,
    /// Fault the log cache's memory in at start-up, before taking clients,
    /// instead of as data arrives (the JVM's AlwaysPreTouch); worth it where
    /// first-touch page faults are slow, as on many VMs [default: false]
    #[arg(long, value_name = "true|false")]
    pub log_cache_pretouch: Option<String>,
    /// Memory for one cleaning pass's map of keys, on compacted topics
    /// (Kafka's log.cleaner.dedupe.buffer.size); a pass cleans as much of
    /// the log as fits, the next one the rest [default: 134217728]
    #[arg(long, value_name = "BYTES")]
    pub log_cleaner_dedupe_buffer_bytes: Option<String>,
    /// How often compacted topics' logs are looked at for cleaning
    /// (Kafka's log.cleaner.backoff.ms) [default: 15000]
    #[arg(long, value_name = "MS")]
    pub log_cleaner_backoff_ms: Option<String>,
    /// The log cleaner's reads and writes together, in bytes per second
    /// (Kafka's log.cleaner.io.max.bytes.per.second) [default: no limit]
    #[arg(long, value_name = "BYTES")]
    pub log_cleaner_io_max_bytes_per_second: Option<String>,
    /// A follower not caught up with its leader for this long leaves the
    /// ISR (Kafka's replica.lag.time.max.ms) [default: 30000]
    #[arg(long, value_name = "MS")]
    pub replica_lag_time_max_ms: Option<String>,
    /// As the controller leader, give each partition's leadership back to
    /// its preferred (first) replica once that is live and in sync again
    /// (Kafka's auto.leader.rebalance.enable) [default: true]
    #[arg(long, value_name = "true|false")]
    pub auto_leader_rebalance_enable: Option<String>,
    /// How often the controller leader does so (Kafka's
    /// leader.imbalance.check.interval.seconds, here in ms) [default: 300000]
    #[arg(long, value_name = "MS")]
    pub leader_imbalance_check_interval_ms: Option<String>,
    /// Log a warning when the data directory's disk has less than this
    /// free (0: never); the free bytes are also a metric
    /// [default: 1073741824]
    #[arg(long, value_name = "BYTES")]
    pub disk_free_warn_bytes: Option<String>,
    /// Refuse produce (KAFKA_STORAGE_ERROR) while the data directory's disk
    /// has less than this free, so that a full disk never half-writes a
    /// batch and fetches, offset commits and deletes keep working; produce
    /// resumes by itself once space is freed (0: never refuse)
    /// [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub disk_min_free_bytes: Option<String>,
    /// Space set aside in the data directory at start-up (a file) and
    /// given back when produce is refused for space, for what must still be
    /// written then: offset commits, metadata, checkpoints (0: none)
    /// [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    pub disk_reserve_bytes: Option<String>,
    /// Log lines on stderr as text, or as json: one JSON object per line.
    /// RUST_LOG sets the levels per module either way [default: text]
    #[arg(long, value_name = "text|json")]
    pub log_format: Option<String>,
    /// Who may do what: none lets every client do everything; acl decides
    /// by Kafka's ACLs (`ringtail acl`), allowing nothing without one but
    /// to the super users [default: none]
    #[arg(long, value_name = "none|acl")]
    pub authorizer: Option<String>,
    /// Principals the acl authorizer allows everything, separated by `;`
    /// (in the file, a list also does): `User:NAME`, `User:ANONYMOUS` for
    /// clients of a PLAINTEXT listener [default: no one]
    #[arg(long, value_name = "User:NAME;...")]
    pub super_users: Option<String>,
    /// How long a SASL authentication lasts: clients re-authenticate on
    /// their connection before then (KIP-368), or it is closed at their
    /// next request (0: sessions never expire) [default: 0]
    #[arg(long, value_name = "MS")]
    pub connections_max_reauth_ms: Option<String>,
    /// How a client certificate's subject (RFC 2253) becomes its principal's
    /// name, as Kafka's ssl.principal.mapping.rules:
    /// RULE:pattern/replacement/[LU] rules and DEFAULT (the whole subject),
    /// comma-separated, the first match winning; a certificate no rule
    /// names is refused [default: DEFAULT]
    #[arg(long, value_name = "RULES")]
    pub ssl_principal_mapping_rules: Option<String>,
    /// The listener followers fetch from their leaders on, by name: PLAINTEXT
    /// (`--listen`) or a `[[listener]]` of the config file [default: PLAINTEXT]
    #[arg(long, value_name = "NAME")]
    pub inter_broker_listener: Option<String>,
    /// How followers authenticate to that listener: a properties file in
    /// the names of `ringtail --command-config` (security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password)
    /// [default: no file: plaintext, anonymous]
    #[arg(long, value_name = "FILE")]
    pub inter_broker_client_config: Option<String>,
}

/// The keys the config file takes at its top level: the name of every flag
/// of `ringtail serve` but `--config`, so that the two cannot drift apart.
pub fn file_keys() -> Vec<String> {
    let serve = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
    let keys = serve.get_arguments().filter_map(|arg| arg.get_long()).filter(|long| *long != "config");
    keys.map(str::to_owned).collect()
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
    /// `None`: this node's address in `controllers`.
    pub controller_listen: Option<HostPort>,
    /// Mutual TLS on the controller listener; `None`: plaintext.
    pub controller_tls: Option<ControllerTlsFiles>,
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
    /// Partition count and segment floors clients are held to.
    pub topic_limits: TopicLimits,
    /// Bytes of the broker's log cache.
    pub log_cache_bytes: usize,
    pub log_cache_pretouch: bool,
    /// How compacted logs are cleaned, and how often (ms).
    pub cleaner: CleanerSettings,
    pub cleaner_backoff_ms: u64,
    /// `None`: no limit.
    pub cleaner_io_bytes_per_sec: Option<u64>,
    /// How partitions replicate (replica.lag.time.max.ms).
    pub replication: ReplicationConfig,
    /// A controller voter's preferred-leader rebalancing interval; `None`
    /// when auto.leader.rebalance is off.
    pub leader_rebalance_interval_ms: Option<i64>,
    /// Free bytes on the data directory's disk under which the upkeep
    /// warns; 0 never.
    pub disk_free_warn_bytes: u64,
    /// Free bytes under which produce is refused; 0 never.
    pub disk_min_free_bytes: u64,
    /// Bytes of the reserve file; 0 none.
    pub disk_reserve_bytes: u64,
    /// How the log is written.
    pub log_format: LogFormat,
    /// Kafka listeners beyond `listen` (`[[listener]]` in the file).
    pub listeners: Vec<ListenerConfig>,
    pub authorizer: AuthorizerKind,
    /// Principals allowed everything under the acl authorizer.
    pub super_users: Vec<String>,
    /// How long a SASL session lasts; `None`: for the connection's life.
    pub sasl_session_lifetime: Option<std::time::Duration>,
    /// Client certificates' subjects to principals.
    pub ssl_principal_mapping_rules: PrincipalMapping,
    /// How followers reach their leaders.
    pub inter_broker: InterBroker,
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
    let controllers =
        value("controllers", get("controllers", &args.controllers)?, Vec::new(), parse_controllers)?;
    let controller_listen_raw = get("controller-listen", &args.controller_listen)?;
    // A single node (no --controllers) runs no voter, and takes the flag
    // as a no-op; a cluster's broker-only node would silently ignore it.
    if let Some(raw) = &controller_listen_raw {
        if !controllers.is_empty() && !controllers.iter().any(|c| c.node_id == node_id) {
            return Err(raw.error(
                "controller-listen",
                format!(
                    "node {node_id} is not among the --controllers, so it runs no controller to listen for"
                ),
            ));
        }
    }
    let controller_listen =
        value("controller-listen", controller_listen_raw, None, |v| parse_host_port(v).map(Some))?;
    let controller_tls = controller_tls(
        get("controller-tls-cert", &args.controller_tls_cert)?,
        get("controller-tls-key", &args.controller_tls_key)?,
        get("controller-tls-ca", &args.controller_tls_ca)?,
        !controllers.is_empty(),
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
    let log_format = value("log-format", get("log-format", &args.log_format)?, LogFormat::Text, str::parse)?;
    let topic_defaults = topic_defaults(&file, flush)?;
    let listeners = file.listeners()?;
    let authorizer =
        value("authorizer", get("authorizer", &args.authorizer)?, AuthorizerKind::None, str::parse)?;
    let ssl_principal_mapping_rules = value(
        "ssl-principal-mapping-rules",
        get("ssl-principal-mapping-rules", &args.ssl_principal_mapping_rules)?,
        PrincipalMapping::default(),
        str::parse,
    )?;
    let inter_broker = inter_broker::check(
        match get("inter-broker-listener", &args.inter_broker_listener)? {
            Some(raw) => (raw.value, Some(raw.origin)),
            None => (listeners::DEFAULT_LISTENER_NAME.to_string(), None),
        },
        get("inter-broker-client-config", &args.inter_broker_client_config)?
            .map(|raw| (PathBuf::from(raw.value), raw.origin)),
        &listeners,
    )?;
    let super_users =
        value("super-users", get("super-users", &args.super_users)?, Vec::new(), parse_principals)?;
    let sasl_session_lifetime = value(
        "connections-max-reauth-ms",
        get("connections-max-reauth-ms", &args.connections_max_reauth_ms)?,
        None,
        |v| parse_ms(v, 0).map(|ms| (ms > 0).then(|| std::time::Duration::from_millis(ms as u64))),
    )?;
    let log_cache_bytes = value(
        "log-cache-bytes",
        get("log-cache-bytes", &args.log_cache_bytes)?,
        crate::memory::default_log_cache_bytes(),
        parse_bytes,
    )?;
    let log_cache_pretouch =
        value("log-cache-pretouch", get("log-cache-pretouch", &args.log_cache_pretouch)?, false, parse_bool)?;
    let cleaner = CleanerSettings {
        dedupe_buffer_bytes: value(
            "log-cleaner-dedupe-buffer-bytes",
            get("log-cleaner-dedupe-buffer-bytes", &args.log_cleaner_dedupe_buffer_bytes)?,
            CleanerSettings::default().dedupe_buffer_bytes,
            parse_bytes,
        )?,
        ..CleanerSettings::default()
    };
    let cleaner_backoff_ms = value(
        "log-cleaner-backoff-ms",
        get("log-cleaner-backoff-ms", &args.log_cleaner_backoff_ms)?,
        15_000,
        |v| parse_ms(v, 1).map(|ms| ms as u64),
    )?;
    let cleaner_io_bytes_per_sec = value(
        "log-cleaner-io-max-bytes-per-second",
        get("log-cleaner-io-max-bytes-per-second", &args.log_cleaner_io_max_bytes_per_second)?,
        None,
        |v| match parse_bytes(v)? {
            0 => Err("must be positive".into()),
            b => Ok(Some(b as u64)),
        },
    )?;
    let replica_lag_time_max_ms = value(
        "replica-lag-time-max-ms",
        get("replica-lag-time-max-ms", &args.replica_lag_time_max_ms)?,
        ReplicationConfig::default().lag_time_max_ms,
        |v| parse_ms(v, 1).map(i64::from),
    )?;
    let auto_leader_rebalance = value(
        "auto-leader-rebalance-enable",
        get("auto-leader-rebalance-enable", &args.auto_leader_rebalance_enable)?,
        true,
        parse_bool,
    )?;
    let leader_imbalance_check_interval_ms = value(
        "leader-imbalance-check-interval-ms",
        get("leader-imbalance-check-interval-ms", &args.leader_imbalance_check_interval_ms)?,
        300_000,
        |v| parse_ms(v, 1).map(i64::from),
    )?;
    let disk_free_warn_bytes = value(
        "disk-free-warn-bytes",
        get("disk-free-warn-bytes", &args.disk_free_warn_bytes)?,
        1 << 30,
        |v| parse_bytes(v).map(|b| b as u64),
    )?;
    let disk_min_free_bytes = value(
        "disk-min-free-bytes",
        get("disk-min-free-bytes", &args.disk_min_free_bytes)?,
        64 << 20,
        |v| parse_bytes(v).map(|b| b as u64),
    )?;
    let disk_reserve_bytes =
        value("disk-reserve-bytes", get("disk-reserve-bytes", &args.disk_reserve_bytes)?, 16 << 20, |v| {
            parse_bytes(v).map(|b| b as u64)
        })?;
    let defaults = TopicLimits::default();
    let topic_limits = TopicLimits {
        partitions_max: value(
            "max-partitions",
            get("max-partitions", &args.max_partitions)?,
            defaults.partitions_max,
            |v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("expected a positive count, got {v:?}"))
            },
        )?,
        segment_bytes_min: value(
            "segment-bytes-min",
            get("segment-bytes-min", &args.segment_bytes_min)?,
            defaults.segment_bytes_min,
            |v| parse_bytes(v).map(|b| b as u64),
        )?,
        segment_ms_min: value(
            "segment-ms-min",
            get("segment-ms-min", &args.segment_ms_min)?,
            defaults.segment_ms_min,
            |v| parse_ms(v, 0).map(i64::from),
        )?,
        open_segment_files_max: value(
            "open-segments-max",
            get("open-segments-max", &args.open_segments_max)?,
            defaults.open_segment_files_max,
            |v| v.parse::<usize>().map_err(|_| format!("expected a count, got {v:?}")),
        )?,
    };
    let group = group_config(
        get("offsets-topic-partitions", &args.offsets_topic_partitions)?,
        get("group-initial-rebalance-delay-ms", &args.group_initial_rebalance_delay_ms)?,
        get("group-min-session-timeout-ms", &args.group_min_session_timeout_ms)?,
        get("group-max-size", &args.group_max_size)?,
        get("offsets-retention-minutes", &args.offsets_retention_minutes)?,
    )?;
    Ok(ServeConfig {
        data_dir,
        listen,
        advertise,
        node_id,
        controllers,
        controller_listen,
        controller_tls,
        metrics_listen,
        io,
        flush,
        default_partitions,
        default_replication_factor,
        auto_create_topics,
        topic_defaults,
        group,
        limits: Limits::default(),
        topic_limits,
        log_cache_bytes,
        log_cache_pretouch,
        cleaner,
        cleaner_backoff_ms,
        cleaner_io_bytes_per_sec,
        replication: ReplicationConfig { lag_time_max_ms: replica_lag_time_max_ms },
        leader_rebalance_interval_ms: auto_leader_rebalance.then_some(leader_imbalance_check_interval_ms),
        disk_free_warn_bytes,
        disk_min_free_bytes,
        disk_reserve_bytes,
        log_format,
        listeners,
        authorizer,
        super_users,
        sasl_session_lifetime,
        ssl_principal_mapping_rules,
        inter_broker,
    })
}

/// The controller listener's TLS files: all three, or none.
fn controller_tls(
    cert: Option<Raw>,
    key: Option<Raw>,
    ca: Option<Raw>,
    cluster: bool,
) -> Result<Option<ControllerTlsFiles>, ConfigError> {
    let given = [("controller-tls-cert", &cert), ("controller-tls-key", &key), ("controller-tls-ca", &ca)];
    let Some((first_key, Some(first))) = given.iter().find(|(_, raw)| raw.is_some()) else {
        return Ok(None);
    };
    if !cluster {
        return Err(
            first.error(first_key, "a single node has no controller listener: it needs --controllers")
        );
    }
    if let Some((missing, _)) = given.iter().find(|(_, raw)| raw.is_none()) {
        return Err(first.error(
            missing,
            "the controller listener's TLS needs all of controller-tls-cert, controller-tls-key and controller-tls-ca",
        ));
    }
    let path = |raw: Option<Raw>| PathBuf::from(raw.map(|r| r.value).unwrap_or_default());
    Ok(Some(ControllerTlsFiles { cert: path(cert), key: path(key), ca: path(ca) }))
}

/// The coordinator's settings: the engine's defaults (Kafka's), with the
/// five the flags set.
fn group_config(
    partitions: Option<Raw>,
    initial_delay: Option<Raw>,
    min_session: Option<Raw>,
    max_size: Option<Raw>,
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
    let max_group_size = value("group-max-size", max_size, defaults.max_group_size, |v| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=i32::MAX as usize).contains(n))
            .ok_or_else(|| format!("must be a member count in 1..={}, got {v:?}", i32::MAX))
    })?;
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
        max_group_size,
        ..defaults
    })
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
