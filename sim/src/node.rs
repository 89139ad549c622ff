//! The broker node: the server `ringtail serve` runs (its listener,
//! connections, Kafka protocol, handlers, maintenance and group timers) on
//! the harness's `SimDisk`, with a madsim clock and seeded entropy, over
//! madsim's simulated TCP. madsim re-runs `broker_main` at every restart,
//! on the same disk.
//!
//! Each start first recovers (faults on), then the harness reads every
//! recovered log whole and hands it to the checker (invariant 5: a synced,
//! valid prefix), then opens the disk a second time to check that recovery
//! is idempotent, and only then starts the server, which opens it again.

use crate::checker::{Invariant, LogRead};
use crate::kafka::BROKER_PORT;
use crate::observer::Observer;
use crate::rng::Rng;
use crate::world::{SimClock, World};
use ringtail_engine::broker::{Broker, BrokerConfig, BrokerEndpoint, ErrorCode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::group::OFFSETS_TOPIC;
use ringtail_engine::io::AnyDisk;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::{LogConfig, RecoveryReport, TopicPartition};
use ringtail_server::config::{HostPort, ServeConfig};
use ringtail_server::metered_disk::ServerBroker;
use ringtail_server::serve::{Platform, RunningServer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const DATA_DIR: &str = "/data";
/// The server's Prometheus listener on a simulated node.
const METRICS_PORT: u16 = 9644;
/// Bytes one harness read of a recovered log asks for.
const VERIFY_READ_BYTES: usize = 1 << 20;

type SimBroker = Broker<crate::disk::SimDisk>;

fn broker_config(world: &World) -> BrokerConfig {
    BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint {
            node_id: 1,
            host: world.broker_addr.ip().to_string(),
            port: i32::from(BROKER_PORT),
        },
        default_partitions: 1,
        default_replication_factor: None,
        // Topics exist only when the workload creates them, so a produce to
        // a deleted topic is refused rather than silently recreating it.
        auto_create_topics: false,
        topic_defaults: LogConfig { flush: world.cfg.flush, ..LogConfig::default() },
        group: world.cfg.group_config,
        log_cache_bytes: world.cfg.log_cache_bytes,
        quorum: false,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits {
            open_segment_files_max: world.cfg.open_segment_files_max,
            ..ringtail_engine::broker::TopicLimits::none()
        },
        cleaner: Default::default(),
    }
}

async fn open(world: &World, rng: &mut Rng) -> Result<(SimBroker, Vec<RecoveryReport>), String> {
    Broker::open(
        Arc::new(world.disk.clone()),
        PathBuf::from(DATA_DIR),
        broker_config(world),
        Arc::new(SimClock),
        Arc::new(SeededEntropy::new(rng.next_u64())),
    )
    .await
    .map_err(|e| e.to_string())
}

/// The node's init: recover, check, start the server; never returns (a
/// madsim node exits when its init future does).
pub async fn broker_main(world: Arc<World>) {
    let start = world.broker_starts.fetch_add(1, Ordering::SeqCst);
    let mut rng = Rng::fork(world.cfg.seed, &format!("broker-{start}"));
    world.checker().note(None, None, format!("broker start #{start}: recovering"));
    let server = loop {
        // The disk is quiet from the harness's second open until the
        // server has opened it too: faults hit the first recovery only.
        let checked = open_checked(&world, &mut rng).await;
        let server = match checked {
            Some(broker) => {
                if world.cfg.groups.is_some() {
                    check_group_recovered(&world, &broker).await;
                }
                // Its directory lock goes with it, for the server to take.
                drop(broker);
                start_server(&world, &mut rng).await
            }
            None => None,
        };
        world.disk.set_quiet(false);
        if let Some(server) = server {
            break server;
        }
        // A broker that cannot open refuses to serve; its supervisor retries.
        madsim::time::sleep(Duration::from_millis(rng.range(50, 500))).await;
    };
    world.checker().note(None, None, format!("broker start #{start}: serving"));
    *world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    world.broker_serving.store(true, Ordering::SeqCst);
    let upkeep_rng = Rng::fork(rng.next_u64(), "upkeep");
    upkeep(world, server.broker().clone(), upkeep_rng).await;
    unreachable!("upkeep runs until the node is killed, holding the server");
}

/// The server's configuration on a simulated node.
fn serve_config(world: &World) -> ServeConfig {
    let host = world.broker_addr.ip().to_string();
    let mut config = ServeConfig::defaults();
    config.data_dir = PathBuf::from(DATA_DIR);
    config.listen = HostPort { host: host.clone(), port: BROKER_PORT };
    config.metrics_listen = HostPort { host, port: METRICS_PORT };
    config.flush = world.cfg.flush;
    // Topics exist only when the workload creates them, so a produce to
    // a deleted topic is refused rather than silently recreating it.
    config.auto_create_topics = false;
    config.topic_defaults = LogConfig { flush: world.cfg.flush, ..LogConfig::default() };
    config.group = world.cfg.group_config;
    config.log_cache_bytes = world.cfg.log_cache_bytes;
    config.log_cache_pretouch = false;
    // The compacted topic (`compacted`) is cleaned many times a seed.
    config.cleaner_backoff_ms = 300;
    // The workload rolls tiny segments on purpose, below the floors a
    // production broker holds clients to.
    config.topic_limits = ringtail_engine::broker::TopicLimits {
        open_segment_files_max: world.cfg.open_segment_files_max,
        ..ringtail_engine::broker::TopicLimits::none()
    };
    config
}

/// Starts the server on the node's disk; `None` if it could not.
async fn start_server(world: &Arc<World>, rng: &mut Rng) -> Option<RunningServer> {
    let observer = Arc::new(Observer { world: world.clone(), broker: OnceLock::new() });
    let platform = Platform {
        disk: AnyDisk::Dyn(Arc::new(world.disk.clone())),
        clock: Arc::new(SimClock),
        seed: rng.next_u64(),
        observer: Some(observer.clone()),
    };
    match ringtail_server::serve::start_on(serve_config(world), platform).await {
        Ok(server) => {
            let _ = observer.broker.set(server.broker().clone());
            Some(server)
        }
        Err(e) => {
            world.counters.op("open_failed");
            world.checker().note(None, None, format!("the server did not start: {e}"));
            *world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            None
        }
    }
}

/// Opens the broker (faults on), checks what recovery left, checks a second
/// recovery changes nothing, and returns the broker to serve.
async fn open_checked(world: &World, rng: &mut Rng) -> Option<SimBroker> {
    let damage_before = media_damage(world);
    let (broker, reports) = match open(world, rng).await {
        Ok(opened) => opened,
        Err(e) => {
            world.counters.op("open_failed");
            world.checker().note(None, None, format!("broker open failed: {e}"));
            *world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            return None;
        }
    };
    world.disk.set_quiet(true);
    let first = check_recovered(world, &broker, &reports).await;
    drop(broker);
    let second = open(world, rng).await;
    let (broker, reports) = match second {
        Ok(opened) => opened,
        Err(e) if media_damage(world) != damage_before => {
            // The first open's own reads found a latent flip (after its
            // recovery scan): refusing now is the safe answer.
            world.counters.op("open_failed");
            world.checker().note(None, None, format!("broker open refused after media damage: {e}"));
            *world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            return None;
        }
        Err(e) => {
            let mut checker = world.checker();
            checker.note(None, None, format!("a second open with no faults failed: {e}"));
            checker.report(
                Invariant::Recovery,
                format!("recovery is not repeatable: a second open failed: {e}"),
            );
            return None;
        }
    };
    let repaired: BTreeMap<(String, i32), bool> = reports
        .iter()
        .filter_map(|r| {
            let tp = tp_of_dir(&r.dir)?;
            let again = r.cut.is_some()
                || !r.segments_deleted.is_empty()
                || r.padding_bytes_trimmed > 0
                || !r.junk_trimmed.is_empty()
                || !r.stray_files_removed.is_empty();
            Some((tp, again))
        })
        .collect();
    for p in broker.hosted_partitions() {
        let tp = (p.tp.topic.clone(), p.tp.partition);
        let now = (p.log.log_start_offset(), p.log.log_end_offset());
        let before = first.get(&tp).copied().unwrap_or(now);
        let again = repaired.get(&tp).copied().unwrap_or(false);
        world.checker().recovery_repeated(&tp, before, now, again);
    }
    Some(broker)
}

/// After a restart, before serving: what the coordinator recovered of the
/// run's group (committed offsets, generation), for G2 and G5.
async fn check_group_recovered(world: &World, broker: &SimBroker) {
    let Some(plan) = &world.cfg.groups else { return };
    let partitions: Vec<(String, i32)> =
        (0..plan.topic.partitions as i32).map(|p| (plan.topic.name.clone(), p)).collect();
    let committed = if broker.topics().contains_key(OFFSETS_TOPIC) {
        match broker.fetch_offsets(&plan.group, Some(partitions)).await {
            Ok(fetched) => fetched
                .into_iter()
                .map(|f| match f.error {
                    ErrorCode::None => Ok((f.partition, f.committed.map(|c| c.offset))),
                    e => Err(format!("{}-{}: {e}", f.topic, f.partition)),
                })
                .collect(),
            Err(e) => Err(format!("{}: {}", e.code, e.message)),
        }
    } else {
        Ok(partitions.iter().map(|(_, p)| (*p, None)).collect())
    };
    let generation = broker.describe_group(&plan.group).ok().map(|d| d.generation);
    world.checker().group_recovered(committed, generation);
}

fn internal(topic: &str) -> bool {
    topic.starts_with("__")
}

/// Media faults (flips, misdirected writes) injected so far.
fn media_damage(world: &World) -> u64 {
    let counts = world.disk.counts();
    counts.flip + counts.misdirect
}

fn tp_of_dir(dir: &std::path::Path) -> Option<(String, i32)> {
    let tp = TopicPartition::from_dir_name(dir.file_name()?.to_str()?)?;
    Some((tp.topic, tp.partition))
}

/// Reads every recovered log whole and gives it to the checker. Returns
/// each partition's `(log start, log end)`.
async fn check_recovered(
    world: &World,
    broker: &SimBroker,
    reports: &[RecoveryReport],
) -> BTreeMap<(String, i32), (u64, u64)> {
    let damaged: BTreeMap<(String, i32), bool> = reports
        .iter()
        .filter_map(|r| {
            let damage = r.cut.is_some() || !r.segments_deleted.is_empty() || !r.corruption_kept.is_empty();
            Some((tp_of_dir(&r.dir)?, damage))
        })
        .collect();
    for r in reports.iter().filter(|r| !r.is_clean() || r.bytes_trimmed() > 0) {
        world.checker().note(None, None, format!("recovery: {r}"));
    }
    let mut ranges = BTreeMap::new();
    for p in broker.hosted_partitions() {
        let tp = (p.tp.topic.clone(), p.tp.partition);
        let read = read_whole_log(&p.log).await;
        ranges.insert(tp.clone(), (read.log_start, read.end));
        if internal(&tp.0) {
            // `__consumer_offsets` holds the coordinator's records, not the
            // producers': the group checks (G2, G5) judge what it recovered.
            continue;
        }
        if tp.0 == crate::compacted::TOPIC {
            // Offsets with gaps by design: invariant C judges it after
            // healing (the second open below still checks it repeats).
            continue;
        }
        let damage = damaged.get(&tp).copied().unwrap_or(false);
        world.checker().recovered(&tp, &read, damage);
    }
    let names: Vec<String> = broker.topics().keys().cloned().collect();
    world.checker().recovered_topics(&names);
    ranges
}

/// The batches of `[log start, log end)`, or where reading stopped.
async fn read_whole_log(log: &ringtail_engine::log::Log<crate::disk::SimDisk>) -> LogRead {
    let (log_start, end) = (log.log_start_offset(), log.log_end_offset());
    let mut read = LogRead { log_start, end, batches: Vec::new(), error: None };
    let mut offset = log_start;
    while offset < end {
        match log.read(offset, VERIFY_READ_BYTES, None).await {
            Ok(r) if !r.records.is_empty() => {
                let next =
                    BatchScanner::new(&r.records).filter_map(Result::ok).last().map(|(_, h)| h.next_offset());
                read.batches.push(r.records);
                match next {
                    Some(next) if next > offset => offset = next,
                    _ => {
                        read.error = Some((offset, "a read made no progress".into()));
                        break;
                    }
                }
            }
            Ok(_) => {
                let bases = log.segment_base_offsets();
                let near: Vec<u64> = bases.iter().copied().filter(|b| b + 100 >= offset).take(8).collect();
                let detail = format!("an empty read below the log end {end} (segments from {near:?})");
                read.error = Some((offset, detail));
                break;
            }
            Err(e) => {
                read.error = Some((offset, e.to_string()));
                break;
            }
        }
    }
    read
}

/// What the harness does beside the server's own upkeep: buggify's forced
/// rolls, and telling the checker where retention moved each log start (and
/// that a poisoned log, once the server reopens it, may have lost what its
/// failed fsync dropped).
async fn upkeep(world: Arc<World>, broker: Arc<ServerBroker>, mut rng: Rng) {
    loop {
        let ms = world.cfg.maintain_ms;
        madsim::time::sleep(Duration::from_millis(rng.range(ms / 2, ms + ms / 2).max(1))).await;
        let partitions = broker.hosted_partitions();
        let poisoned: Vec<String> =
            partitions.iter().filter(|p| p.log.poisoned().is_some()).map(|p| p.tp.to_string()).collect();
        if !poisoned.is_empty() {
            world.checker().unsynced_may_be_lost();
            world.checker().note(None, None, format!("poisoned {poisoned:?}: the server reopens them"));
        }
        if !partitions.is_empty() && rng.chance(world.cfg.roll_chance) {
            let p = rng.pick(&partitions);
            if p.log.roll().await.is_ok() {
                world.counters.fault("forced_roll");
            }
        }
        let mut checker = world.checker();
        for p in partitions.iter().filter(|p| !internal(&p.tp.topic)) {
            checker.retention_moved(&(p.tp.topic.clone(), p.tp.partition), p.log.log_start_offset());
        }
    }
}
