//! `ringtail serve` configuration: defaults, flags over the file, and the
//! message each bad value gets.

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
    assert_eq!(c.controller_listen, None);
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
    assert_eq!(c.replication.lag_time_max_ms, 30_000);
    assert_eq!(c.leader_rebalance_interval_ms, Some(300_000));
    assert_eq!(c.cleaner.dedupe_buffer_bytes, 128 << 20);
    assert_eq!(c.cleaner_backoff_ms, 15_000);
    assert_eq!(c.cleaner_io_bytes_per_sec, None);
    assert_eq!(c.disk_free_warn_bytes, 1 << 30);
    let c = resolve(&ServeArgs { disk_free_warn_bytes: Some("0".into()), ..args() }).unwrap();
    assert_eq!(c.disk_free_warn_bytes, 0, "never warn");
}

#[test]
fn replication_settings_come_from_flags_or_the_file() {
    let f = file("replica-lag-time-max-ms = 5000\nleader-imbalance-check-interval-ms = 10000\n");
    let a = ServeArgs { config: Some(f.path().into()), ..args() };
    let c = resolve(&a).unwrap();
    assert_eq!((c.replication.lag_time_max_ms, c.leader_rebalance_interval_ms), (5000, Some(10_000)));
    let a = ServeArgs { auto_leader_rebalance_enable: Some("false".into()), ..a };
    assert_eq!(resolve(&a).unwrap().leader_rebalance_interval_ms, None, "rebalancing off");
    let a = ServeArgs { leader_imbalance_check_interval_ms: Some("0".into()), ..args() };
    let e = resolve(&a).unwrap_err().to_string();
    assert!(e.contains("leader-imbalance-check-interval-ms"), "{e}");
}

#[test]
fn group_settings_come_from_flags_or_the_file() {
    let f = file(
        "offsets-topic-partitions = 8\ngroup-min-session-timeout-ms = 2000\noffsets-retention-minutes = 60\n",
    );
    let a = ServeArgs {
        config: Some(f.path().into()),
        group_initial_rebalance_delay_ms: Some("0".into()),
        group_min_session_timeout_ms: Some("1000".into()),
        group_max_size: Some("250".into()),
        ..args()
    };
    let c = resolve(&a).unwrap();
    assert_eq!(c.group.max_group_size, 250);
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
    let f = file(
        "[topic-defaults]\nretention.ms = 1000\n\"segment.bytes\" = \"4096\"\ncleanup.policy = \"delete\"\n\
         unclean.leader.election.enable = false\n",
    );
    let c = resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap();
    assert_eq!(c.topic_defaults.retention_ms, Some(1000));
    assert_eq!(c.topic_defaults.segment_bytes, 4096);
}

#[test]
fn bad_values_name_their_key_on_one_line() {
    let cases: [(ServeArgs, &str); 19] = [
        (
            ServeArgs { log_cleaner_io_max_bytes_per_second: Some("0".into()), ..args() },
            "--log-cleaner-io-max-bytes-per-second",
        ),
        (ServeArgs { log_cleaner_backoff_ms: Some("0".into()), ..args() }, "--log-cleaner-backoff-ms"),
        (ServeArgs { log_cache_pretouch: Some("yes".into()), ..args() }, "--log-cache-pretouch"),
        (ServeArgs { log_cache_bytes: Some("1GiB".into()), ..args() }, "--log-cache-bytes"),
        (ServeArgs { offsets_retention_minutes: Some("0".into()), ..args() }, "--offsets-retention-minutes"),
        (ServeArgs { offsets_topic_partitions: Some("0".into()), ..args() }, "--offsets-topic-partitions"),
        (ServeArgs { offsets_topic_partitions: Some("x".into()), ..args() }, "--offsets-topic-partitions"),
        (
            ServeArgs { group_initial_rebalance_delay_ms: Some("-1".into()), ..args() },
            "--group-initial-rebalance-delay-ms",
        ),
        (
            ServeArgs { group_min_session_timeout_ms: Some("0".into()), ..args() },
            "--group-min-session-timeout-ms",
        ),
        (ServeArgs { group_max_size: Some("0".into()), ..args() }, "--group-max-size"),
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
        (
            "[topic-defaults]\nunclean.leader.election.enable = true\n",
            "topic-defaults.unclean.leader.election.enable",
        ),
        ("listen = [1, 2]\n", "listen"),
        ("log-format = \"xml\"\n", "log-format"),
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
    let message = resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap_err().to_string();
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_missing_config_file_is_a_config_error() {
    let a = ServeArgs { config: Some("/nonexistent/ringtail.toml".into()), ..args() };
    assert!(resolve(&a).unwrap_err().to_string().contains("/nonexistent/ringtail.toml"));
}

#[test]
fn a_voter_a_broker_only_node_and_bad_voter_lists() {
    let voters = "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293";
    let voter = ServeArgs { controllers: Some(voters.into()), node_id: Some("2".into()), ..args() };
    let c = resolve(&voter).unwrap();
    assert_eq!(c.controllers.iter().map(|v| v.node_id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(c.controllers[1].address.to_string(), "127.0.0.1:9193");
    let broker_only = ServeArgs { node_id: Some("4".into()), ..voter.clone() };
    assert_eq!(resolve(&broker_only).unwrap().controllers.len(), 3);
    let bind = ServeArgs { controller_listen: Some("0.0.0.0:9193".into()), ..voter };
    assert_eq!(resolve(&bind).unwrap().controller_listen.unwrap().to_string(), "0.0.0.0:9193");
    let listening_non_voter = ServeArgs { controller_listen: Some("127.0.0.1:9393".into()), ..broker_only };
    let message = resolve(&listening_non_voter).unwrap_err().to_string();
    assert!(message.contains("node 4 is not among the --controllers"), "{message}");
    let twice = ServeArgs { controllers: Some("1@127.0.0.1:9093,1@127.0.0.1:9193".into()), ..args() };
    assert!(resolve(&twice).unwrap_err().to_string().contains("node 1 is listed twice"));
    let garbage = ServeArgs { controllers: Some("1@127.0.0.1:9093,x".into()), ..args() };
    assert!(resolve(&garbage).unwrap_err().to_string().contains("ID@HOST:PORT"));
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

#[test]
fn the_authorizer_and_super_users_from_flags_and_the_file() {
    let c = resolve(&args()).unwrap();
    assert_eq!(c.authorizer, AuthorizerKind::None);
    assert!(c.super_users.is_empty());
    let f = file("authorizer = \"acl\"\nsuper-users = [\"User:admin\", \"User:CN=ops,O=example\"]\n");
    let c = resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap();
    assert_eq!(c.authorizer, AuthorizerKind::Acl);
    assert_eq!(c.super_users, ["User:admin", "User:CN=ops,O=example"]);
    let flags = ServeArgs { super_users: Some("User:a; User:b".into()), ..args() };
    assert_eq!(resolve(&flags).unwrap().super_users, ["User:a", "User:b"]);

    let bad = ServeArgs { super_users: Some("admin".into()), ..args() };
    let e = resolve(&bad).unwrap_err().to_string();
    assert!(e.starts_with("bad config: --super-users:") && e.contains("User:NAME"), "{e}");
    let e = resolve(&ServeArgs { authorizer: Some("simple".into()), ..args() }).unwrap_err().to_string();
    assert_eq!(e, "bad config: --authorizer: expected none or acl, got \"simple\"");
    let f = file("super-users = [1]\n");
    let e = resolve(&ServeArgs { config: Some(f.path().into()), ..args() }).unwrap_err().to_string();
    assert!(e.contains("super-users") && e.contains("list of strings"), "{e}");
    let cluster =
        ServeArgs { authorizer: Some("acl".into()), controllers: Some("1@127.0.0.1:9093".into()), ..args() };
    assert_eq!(
        resolve(&cluster).unwrap().authorizer,
        AuthorizerKind::Acl,
        "ACLs are the quorum's in a cluster"
    );
}

#[test]
fn the_inter_broker_listener_and_its_client_config_agree() {
    let c = resolve(&args()).unwrap();
    assert_eq!(c.inter_broker, InterBroker::default());
    assert_eq!(c.inter_broker.listener, "PLAINTEXT");
    let listeners = "[[listener]]\nname = \"internal\"\naddress = \"127.0.0.1:0\"\n\
                     security-protocol = \"SASL_PLAINTEXT\"\n";
    let f = file(listeners);
    let sasl = file("security.protocol=SASL_PLAINTEXT\nsasl.username=broker\nsasl.password=pw\n");
    let ok = ServeArgs {
        config: Some(f.path().into()),
        inter_broker_listener: Some("internal".into()),
        inter_broker_client_config: Some(sasl.path().to_str().unwrap().into()),
        controllers: Some("1@127.0.0.1:9093".into()),
        ..args()
    };
    let c = resolve(&ok).unwrap();
    assert_eq!(c.inter_broker.listener, "internal");
    assert_eq!(c.listeners.len(), 1, "several listeners in a cluster");
    let security = c.inter_broker.security().unwrap();
    assert_eq!(InterBroker::principal(&security), "User:broker");

    let unknown = ServeArgs { inter_broker_listener: Some("nope".into()), ..ok.clone() };
    let e = resolve(&unknown).unwrap_err().to_string();
    assert!(e.contains("no listener named \"nope\"") && e.contains("PLAINTEXT, internal"), "{e}");
    let plaintext_client = ServeArgs { inter_broker_client_config: None, ..ok.clone() };
    let e = resolve(&plaintext_client).unwrap_err().to_string();
    assert!(e.contains("listener internal is SASL_PLAINTEXT") && e.contains("says PLAINTEXT"), "{e}");
    let missing =
        ServeArgs { inter_broker_client_config: Some("/nonexistent/client.properties".into()), ..ok };
    let e = resolve(&missing).unwrap_err().to_string();
    assert!(e.starts_with("bad config: --inter-broker-client-config: /nonexistent/client.properties"), "{e}");
}

#[test]
fn the_controller_listener_takes_all_three_tls_files_or_none() {
    assert_eq!(resolve(&args()).unwrap().controller_tls, None);
    let cluster = ServeArgs {
        controllers: Some("1@127.0.0.1:9093".into()),
        controller_tls_cert: Some("c.pem".into()),
        controller_tls_key: Some("k.pem".into()),
        controller_tls_ca: Some("ca.pem".into()),
        ..args()
    };
    let files = resolve(&cluster).unwrap().controller_tls.unwrap();
    assert_eq!((files.cert.to_str(), files.ca.to_str()), (Some("c.pem"), Some("ca.pem")));
    let e = resolve(&ServeArgs { controller_tls_ca: None, ..cluster.clone() }).unwrap_err().to_string();
    assert!(e.starts_with("bad config: --controller-tls-ca:") && e.contains("needs all of"), "{e}");
    let e = resolve(&ServeArgs { controllers: None, ..cluster }).unwrap_err().to_string();
    assert!(e.contains("a single node has no controller listener"), "{e}");
}
