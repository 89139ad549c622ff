//! The quorum scenario's clients, on one node: simulated brokers that
//! register, heartbeat (some fall silent for longer than their session,
//! some restart with a new incarnation) and follow the image as a server's
//! broker does (`Ask::Image`, newer images only), and as leaders change
//! ISRs (`Ask::AlterPartition`) from the image they last followed, and an
//! admin creating topics.
//! They speak the controller listener's protocol through the server's
//! `QuorumClient`, which finds the leader by asking around and following
//! NOT_CONTROLLER.

use super::{voter_addr, QuorumWorld};
use crate::quorumcheck::image_hash;
use crate::rng::Rng;
use crate::world::sim_elapsed_ms;
use ringtail_engine::controller::{IsrChange, MetadataImage};
use ringtail_engine::error::ErrorCode;
use ringtail_engine::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use ringtail_engine::security::state::SecurityChange;
use ringtail_server::quorum::client::QuorumClient;
use ringtail_server::quorum::wire::{Ask, Outcome};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The scenario's one client of the quorum, shared by its brokers.
pub fn caller(voters: u64) -> Arc<QuorumClient> {
    Arc::new(QuorumClient::new((1..=voters).map(|id| (id, voter_addr(id))).collect(), REPLY_TIMEOUT))
}

async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// A simulated broker: registers, heartbeats; during the safety phase it
/// sometimes falls silent past its session, or restarts (new incarnation).
pub async fn broker(world: Arc<QuorumWorld>, caller: Arc<QuorumClient>, node_id: i32) {
    let mut rng = Rng::fork(world.plan.seed, &format!("quorum-broker-{node_id}"));
    let mut incarnation = 1u64;
    let mut registered = false;
    let mut followed = 0;
    // Drawn apart, so the other draws of a seed stay as they were.
    let mut isr_rng = Rng::fork(world.plan.seed, &format!("quorum-broker-{node_id}-isr"));
    while !world.done.load(Ordering::SeqCst) {
        let quiet = world.quiet.load(Ordering::SeqCst);
        if let Some(Outcome::Image { applied, image: Some(image), .. }) =
            caller.call(Ask::Image { after: followed }).await
        {
            if applied > followed {
                followed = applied;
                world.check().at(sim_elapsed_ms()).broker_image(node_id, applied, image_hash(&image));
                if registered && isr_rng.chance(0.3) {
                    alter_an_isr(&world, &caller, node_id, &image, &mut isr_rng).await;
                }
            }
        }
        if !registered {
            let ask = Ask::RegisterBroker { node_id, incarnation, endpoints: Vec::new() };
            if let Some(Outcome::Committed(index)) = caller.call(ask).await {
                world.check().at(sim_elapsed_ms()).note(format!(
                    "client: broker {node_id} incarnation {incarnation} registered at index {index}"
                ));
                registered = true;
            }
        } else {
            match caller.call(Ask::BrokerHeartbeat { node_id, incarnation }).await {
                Some(Outcome::Refused { code, .. }) if code == ErrorCode::StaleBrokerEpoch.code() => {
                    registered = false
                }
                Some(Outcome::Heartbeat { fenced }) if quiet => {
                    world.live_brokers.lock().unwrap_or_else(|p| p.into_inner()).insert(node_id, !fenced);
                }
                _ => {}
            }
        }
        if !quiet && rng.chance(0.01) {
            let ms = world.plan.broker_session_ms + rng.range(0, 3_000);
            world
                .check()
                .at(sim_elapsed_ms())
                .note(format!("client: broker {node_id} falls silent for {ms} ms"));
            sleep_ms(ms).await;
        } else if !quiet && rng.chance(0.005) {
            incarnation += 1;
            registered = false;
            world.check().at(sim_elapsed_ms()).note(format!("client: broker {node_id} restarts"));
        }
        sleep_ms(world.plan.broker_session_ms / 4).await;
    }
}

/// As a partition leader would: one partition this broker leads, as of
/// the image it followed (often behind the quorum's), takes every live
/// replica into its ISR, or drops to the leader alone. Races fencing and
/// other changes; a stale one must be overtaken, never applied.
async fn alter_an_isr(
    world: &QuorumWorld,
    caller: &QuorumClient,
    node_id: i32,
    image: &MetadataImage,
    rng: &mut Rng,
) {
    let led: Vec<(&String, usize)> = image
        .topics
        .iter()
        .flat_map(|(name, t)| t.partitions.iter().enumerate().map(move |(i, p)| (name, i, p)))
        .filter(|(_, _, p)| p.leader == node_id)
        .map(|(name, i, _)| (name, i))
        .collect();
    if led.is_empty() {
        return;
    }
    let (name, index) = led[rng.below(led.len() as u64) as usize];
    let topic = &image.topics[name];
    let p = &topic.partitions[index];
    let isr = if rng.chance(0.7) {
        p.replicas.iter().copied().filter(|r| image.is_live(*r) || *r == node_id).collect()
    } else {
        vec![node_id]
    };
    world.counters.op("alter_partition");
    let change = IsrChange {
        topic_id: topic.topic_id.clone(),
        partition: index as i32,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: isr.clone(),
    };
    let ask = Ask::AlterPartition { node_id, change };
    let outcome = caller.call(ask).await;
    world.check().at(sim_elapsed_ms()).note(format!(
        "client: broker {node_id} asks ISR {isr:?} for {name}-{index} at epochs {}/{}: {outcome:?}",
        p.leader_epoch, p.partition_epoch
    ));
}

/// Creates topics one after another, and deletes some it created; now and
/// then grants a new principal an ACL, or deletes one granted before.
/// Acknowledged creates and deletes must survive.
pub async fn admin(world: Arc<QuorumWorld>, caller: Arc<QuorumClient>) {
    let mut rng = Rng::fork(world.plan.seed, "quorum-admin");
    let mut n = 0;
    while !world.quiet.load(Ordering::SeqCst) {
        let name = format!("t{n}");
        n += 1;
        let ask = Ask::CreateTopic {
            name: name.clone(),
            partitions: rng.range(1, 4) as i32,
            replication_factor: rng.range(1, world.plan.brokers as u64 + 1) as i16,
            configs: BTreeMap::new(),
        };
        world.counters.op("create_topic");
        if let Some(Outcome::Committed(index)) = caller.call(ask).await {
            world.check().at(sim_elapsed_ms()).acked(&name, index);
        }
        if rng.chance(0.3) {
            let acl = read_acl(&format!("User:u{n}"), &name);
            world.counters.op("put_acl");
            let ask = Ask::ChangeSecurity { changes: vec![SecurityChange::PutAcl { acl: acl.clone() }] };
            if let Some(Outcome::Committed(index)) = caller.call(ask).await {
                world.check().at(sim_elapsed_ms()).granted(&acl, index);
            }
        }
        let granted = world.check().acked_acls.len() as u64;
        let revoke = world.check().acked_acls.keys().nth(rng.below(granted.max(1)) as usize).cloned();
        if let Some(acl) = revoke.filter(|_| rng.chance(0.1)) {
            world.counters.op("delete_acl");
            // From here its fate is open until the deletion is acknowledged.
            world.check().acked_acls.remove(&acl);
            let ask = Ask::ChangeSecurity { changes: vec![SecurityChange::DeleteAcl { acl: acl.clone() }] };
            if let Some(Outcome::Committed(index)) = caller.call(ask).await {
                world.check().at(sim_elapsed_ms()).revoked(&acl, index);
            }
        }
        // Now and then a topic created earlier goes (members delete its logs).
        let victim = world.check().acked_topics.keys().nth(rng.below(n) as usize).cloned();
        if let Some(victim) = victim.filter(|_| rng.chance(0.2)) {
            world.counters.op("delete_topic");
            // From here its fate is open until the delete is acknowledged.
            world.check().acked_topics.remove(&victim);
            if let Some(Outcome::Committed(index)) =
                caller.call(Ask::DeleteTopic { name: victim.clone() }).await
            {
                world.check().at(sim_elapsed_ms()).deleted(&victim, index);
            }
        }
        sleep_ms(rng.range(50, 800)).await;
    }
}

/// `principal` may read `topic`.
fn read_acl(principal: &str, topic: &str) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: topic.into(),
        pattern_type: PatternType::Literal,
        principal: principal.into(),
        host: "*".into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    }
}
