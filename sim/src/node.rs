//! The broker node: the engine's `Broker` on the harness's `SimDisk`, with a
//! madsim clock and seeded entropy, serving typed requests over madsim's
//! network. madsim re-runs `broker_main` at every restart, on the same disk.
//!
//! Each start first recovers (faults on), then the harness reads every
//! recovered log whole and hands it to the checker (invariant 5: a synced,
//! valid prefix), then opens the disk a second time to check that recovery
//! is idempotent, and only then serves.

use crate::checker::{Invariant, LogRead};
use crate::rng::Rng;
use crate::transport::{self, BROKER_PORT};
use crate::wire::{self, Envelope, Request, Response};
use crate::world::{SimClock, World};
use bytes::Bytes;
use madsim::net::Endpoint;
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, BrokerError, ErrorCode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::group::{
    CommitOffset, CommitRequest, GroupState, HeartbeatRequest, JoinRequest, LeavingMember, SyncRequest,
    OFFSETS_TOPIC,
};
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::{LogConfig, RecoveryReport, TopicPartition};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const DATA_DIR: &str = "/data";
/// Requests a broker works on at once; more wait (backpressure).
const REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// Bytes one harness read of a recovered log asks for.
const VERIFY_READ_BYTES: usize = 1 << 20;
/// How often the node runs the coordinator's timers, as the server does.
const GROUP_TICK_MS: u64 = 100;
/// The one assignor the simulated members speak.
pub const GROUP_PROTOCOL: &str = "range";

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

/// The node's init: recover, check, serve; never returns (a madsim node
/// exits when its init future does).
pub async fn broker_main(world: Arc<World>) {
    let start = world.broker_starts.fetch_add(1, Ordering::SeqCst);
    let mut rng = Rng::fork(world.cfg.seed, &format!("broker-{start}"));
    world.checker().note(None, None, format!("broker start #{start}: recovering"));
    let broker = loop {
        if let Some(broker) = open_checked(&world, &mut rng).await {
            break Arc::new(broker);
        }
        // A broker that cannot open refuses to serve; its supervisor retries.
        madsim::time::sleep(Duration::from_millis(rng.range(50, 500))).await;
    };
    if world.cfg.groups.is_some() {
        check_group_recovered(&world, &broker).await;
        madsim::task::spawn(group_ticker(broker.clone()));
    }
    world.checker().note(None, None, format!("broker start #{start}: serving"));
    *world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    world.broker_serving.store(true, Ordering::SeqCst);
    let upkeep_rng = Rng::fork(rng.next_u64(), "upkeep");
    madsim::task::spawn(upkeep(world.clone(), broker.clone(), upkeep_rng));
    serve(world, broker, rng).await;
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
    world.disk.set_quiet(false);
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

/// The coordinator's timers on the simulated clock.
async fn group_ticker(broker: Arc<SimBroker>) {
    loop {
        madsim::time::sleep(Duration::from_millis(GROUP_TICK_MS)).await;
        broker.tick_groups().await;
    }
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

/// Periodic upkeep, as the server runs it on a timer: retention, interval
/// flushes, checkpoints, reopening poisoned logs; and buggify's forced rolls.
async fn upkeep(world: Arc<World>, broker: Arc<SimBroker>, mut rng: Rng) {
    loop {
        let ms = world.cfg.maintain_ms;
        madsim::time::sleep(Duration::from_millis(rng.range(ms / 2, ms + ms / 2).max(1))).await;
        broker.maintain().await;
        let poisoned: Vec<String> = broker
            .hosted_partitions()
            .iter()
            .filter(|p| p.log.poisoned().is_some())
            .map(|p| p.tp.to_string())
            .collect();
        if !poisoned.is_empty() {
            world.checker().unsynced_may_be_lost();
        }
        let reopened = broker.recover_poisoned().await;
        if !poisoned.is_empty() {
            world.checker().unsynced_may_be_lost();
            world.counters.op("reopen_poisoned");
            let still: Vec<String> = broker
                .hosted_partitions()
                .iter()
                .filter(|p| p.log.poisoned().is_some())
                .map(|p| p.tp.to_string())
                .collect();
            let text = format!("poisoned {poisoned:?}: reopened {reopened}, still poisoned {still:?}");
            world.checker().note(None, None, text);
        }
        let partitions = broker.hosted_partitions();
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

async fn serve(world: Arc<World>, broker: Arc<SimBroker>, mut rng: Rng) {
    let ep = Endpoint::bind(world.broker_addr).await.expect("the broker binds its port");
    let limit = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX));
    loop {
        let Some((bytes, from)) = transport::recv(&ep).await else { continue };
        let msg = match wire::decode_request(&bytes) {
            Ok(msg) => msg,
            Err(e) => panic!("a client sent an undecodable request: {e:?}"),
        };
        let permit = limit.clone().acquire_owned().await.expect("the semaphore is never closed");
        let dup = transport::draw_duplicate(&mut rng, world.cfg.duplicate_rate, &world.counters);
        let (world, broker, ep) = (world.clone(), broker.clone(), ep.clone());
        madsim::task::spawn(async move {
            let response = handle(&world, &broker, msg.body).await;
            drop(permit);
            if let Some(body) = response {
                let epoch = world.checker().loss_epoch();
                let bytes = wire::encode_response(&Envelope { id: msg.id, epoch, body });
                transport::send(&ep, from, bytes, dup).await;
            }
        });
    }
}

fn error(e: BrokerError) -> Response {
    Response::Error { code: e.code.code(), message: e.message, log_range: None }
}

/// Runs one request against the broker; `None` for acks=0 produces.
async fn handle(world: &World, broker: &SimBroker, request: Request) -> Option<Response> {
    let response = match request {
        Request::CreateTopic { name, partitions, configs } => {
            let request = CreateTopic {
                name,
                partitions: Some(partitions),
                replication_factor: None,
                configs: configs.into_iter().collect(),
            };
            let name = request.name.clone();
            let created = broker.create_topic(request, false).await.map(|_| Response::Created);
            if created.is_ok() {
                // A create that arrives late (delayed or duplicated by the
                // network) may recreate a topic deleted since: the checker
                // must know the broker did it.
                world.checker().topic_created_by_broker(&name);
            }
            created
        }
        Request::DeleteTopic { name } => broker.delete_topic(&name).await.map(|_| Response::Deleted),
        Request::Produce { topic, partition, acks, records } => {
            let result = produce(broker, &topic, partition, acks, records).await;
            if acks == 0 {
                return None;
            }
            result
        }
        Request::Fetch { topic, partition, offset, max_bytes } => {
            return Some(fetch(broker, &topic, partition, offset, max_bytes).await);
        }
        Request::ListOffsets { topic, partition, timestamp } => {
            match broker.leader_partition(&topic, partition) {
                Ok(p) => p.list_offset(timestamp).await.map(|(offset, _)| Response::Offset { offset }),
                Err(e) => Err(e),
            }
        }
        group => group_request(world, broker, group).await,
    };
    Some(response.unwrap_or_else(error))
}

/// A consumer-group request. The node reports the coordinator's answers to
/// the checker in the order the engine produced them.
async fn group_request(world: &World, broker: &SimBroker, request: Request) -> Result<Response, BrokerError> {
    match request {
        Request::FindCoordinator { group } => {
            broker.find_group_coordinator(&group).await.map(|e| Response::Coordinator { node_id: e.node_id })
        }
        Request::JoinGroup { group, member_id, session_timeout_ms, rebalance_timeout_ms, metadata } => {
            let r = broker
                .join_group(JoinRequest {
                    group_id: group,
                    member_id,
                    instance_id: None,
                    client_id: "ringtail-sim".into(),
                    client_host: "sim".into(),
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocol_type: "consumer".into(),
                    protocols: vec![(GROUP_PROTOCOL.into(), metadata)],
                    require_known_member_id: true,
                    reason: None,
                })
                .await;
            if r.error.is_ok() {
                let members: Vec<String> = r.members.iter().map(|m| m.member_id.clone()).collect();
                world.checker().group_joined(&r.member_id, r.generation, &r.leader, &members);
            }
            Ok(Response::Joined {
                error: r.error.code(),
                generation: r.generation,
                leader: r.leader,
                member_id: r.member_id,
                members: r.members.into_iter().map(|m| (m.member_id, m.metadata)).collect(),
            })
        }
        Request::SyncGroup { group, generation, member_id, assignments } => {
            let r = broker
                .sync_group(SyncRequest {
                    group_id: group,
                    generation,
                    member_id: member_id.clone(),
                    instance_id: None,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some(GROUP_PROTOCOL.into()),
                    assignments,
                })
                .await;
            if r.error.is_ok() {
                world.checker().group_synced(&member_id, generation, &r.assignment);
            }
            Ok(Response::Synced { error: r.error.code(), assignment: r.assignment })
        }
        Request::Heartbeat { group, generation, member_id } => broker
            .heartbeat(HeartbeatRequest { group_id: group, generation, member_id, instance_id: None })
            .await
            .map(|()| Response::GroupOk),
        Request::LeaveGroup { group, member_id } => {
            let leaving = vec![LeavingMember { member_id, instance_id: None, reason: None }];
            match broker.leave_group(&group, leaving).await?.into_iter().next() {
                Some(Err(e)) => Err(e),
                _ => Ok(Response::GroupOk),
            }
        }
        Request::OffsetCommit { group, generation, member_id, offsets } => {
            // The group as the coordinator sees it when the commit arrives:
            // a commit from another generation, or from a member no longer
            // in the group, must be refused (G4).
            let arrival = broker.describe_group(&group).ok().map(|d| {
                let member = d.members.iter().any(|m| m.member_id == member_id);
                // A "simple" commit (no generation, no member) is
                // accepted while the group has no members.
                let simple = generation < 0 && member_id.is_empty() && d.state == GroupState::Empty;
                (if simple { generation } else { d.generation }, member || simple)
            });
            let started = world.checker().group_commit_started(&member_id, generation, &offsets, arrival);
            let request = CommitRequest {
                group_id: group,
                generation,
                member_id,
                instance_id: None,
                offsets: offsets
                    .iter()
                    .map(|(topic, partition, offset)| CommitOffset {
                        topic: topic.clone(),
                        partition: *partition,
                        offset: *offset,
                        leader_epoch: -1,
                        metadata: None,
                    })
                    .collect(),
            };
            let result = broker.commit_offsets(request).await;
            let oks: Option<Vec<bool>> = result.as_ref().ok().map(|r| r.iter().map(Result::is_ok).collect());
            world.checker().group_commit_ended(&started, oks.as_deref());
            result.map(|r| Response::Committed {
                errors: r.iter().map(|x| x.as_ref().err().map_or(0, |e| e.code.code())).collect(),
            })
        }
        Request::OffsetFetch { group, partitions } => {
            broker.fetch_offsets(&group, Some(partitions)).await.map(|f| Response::Offsets {
                offsets: f
                    .into_iter()
                    .map(|x| (x.topic, x.partition, x.committed.map_or(-1, |c| c.offset), x.error.code()))
                    .collect(),
            })
        }
        other => unreachable!("not a group request: {other:?}"),
    }
}

async fn produce(
    broker: &SimBroker,
    topic: &str,
    partition: i32,
    acks: i8,
    records: Bytes,
) -> Result<Response, BrokerError> {
    let acks = Acks::from_kafka(i16::from(acks))
        .ok_or_else(|| BrokerError::new(ErrorCode::InvalidRequiredAcks, format!("acks {acks}")))?;
    let p = broker.leader_partition(topic, partition)?;
    let outcome = p.produce(records, acks).await?;
    Ok(Response::Produced { base_offset: outcome.base_offset, log_start_offset: outcome.log_start_offset })
}

async fn fetch(broker: &SimBroker, topic: &str, partition: i32, offset: i64, max_bytes: u32) -> Response {
    let p = match broker.leader_partition(topic, partition) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    match p.fetch(offset, max_bytes as usize).await {
        Ok(f) => Response::Fetched {
            records: f.records,
            high_watermark: f.high_watermark,
            log_start_offset: f.log_start_offset,
        },
        Err(e) if e.code == ErrorCode::OffsetOutOfRange => Response::Error {
            code: e.code.code(),
            message: e.message,
            log_range: Some((p.log.log_start_offset(), p.log.log_end_offset())),
        },
        Err(e) => error(e),
    }
}
