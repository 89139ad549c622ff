//! A controller voter running in a server (or a simulated node): the
//! engine's `QuorumNode` fed by the controller listener's events and a
//! tick, its raft messages sent to the peers, brokers' requests answered
//! once their proposals apply.

use super::tls::ControllerTls;
use super::transport::{self, Event, Peers};
use super::wire::{encode, Ask, Frame, Outcome, QuorumStatus, Reply};
use bytes::Bytes;
use ringtail_engine::clock::Clock;
use ringtail_engine::controller::quorum::PRODUCER_ID_BLOCK;
use ringtail_engine::controller::{Controller, ProposalId, QuorumNode};
use ringtail_engine::error::{BrokerError, ErrorCode};
use ringtail_engine::io::Disk;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// The loop wakes at least this often to tick raft.
const POLL: Duration = Duration::from_millis(20);

/// Sees the controller after each turn (the simulator's checker).
pub trait VoterObserver: Send + Sync + 'static {
    fn after_turn(&self, controller: &mut Controller);
}

/// Runs a voter until its disk fails (the error says how); the caller
/// stops the process then, as raft's state and the disk may disagree.
pub async fn run<D: Disk>(
    mut node: QuorumNode<D>,
    listener: TcpListener,
    peers: BTreeMap<u64, SocketAddr>,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn VoterObserver>>,
    tls: Option<Arc<ControllerTls>>,
) -> std::io::Error {
    let (events_tx, mut events) = unbounded_channel();
    tokio::spawn(transport::accept(listener, tls.clone(), events_tx));
    let peers = Peers::start(&peers, tls);
    let mut waiting: BTreeMap<ProposalId, Waiting> = BTreeMap::new();
    loop {
        let event = tokio::time::timeout(POLL, events.recv()).await.ok().flatten();
        let now = clock.now_ms();
        let turn = async {
            let mut out = match event {
                Some(Event::Raft(message)) => node.step(message).await?,
                Some(Event::Request(request, reply_to)) => {
                    match handle(&mut node.controller, request.ask, now) {
                        Handled::Later(proposal, on_commit) => {
                            waiting.insert(proposal, Waiting { reply_to, id: request.id, on_commit });
                        }
                        Handled::Now(outcome) => {
                            let _ = reply_to.send(encode(&Frame::Reply(Reply { id: request.id, outcome })));
                        }
                    }
                    node.drive().await?
                }
                None => Vec::new(),
            };
            out.extend(node.tick(now).await?);
            Ok::<_, std::io::Error>(out)
        };
        let out = match turn.await {
            Ok(out) => out,
            Err(e) => return e,
        };
        if let Some(observer) = &observer {
            observer.after_turn(&mut node.controller);
        }
        for (proposal, answer) in node.controller.take_answers() {
            if let Some(Waiting { reply_to, id, on_commit }) = waiting.remove(&proposal) {
                let outcome = match answer {
                    Ok(index) => on_commit.map_or(Outcome::Committed(index), |answer| answer(index)),
                    Err(e) => refused(&node.controller, e),
                };
                let _ = reply_to.send(encode(&Frame::Reply(Reply { id, outcome })));
            }
        }
        for message in out {
            peers.send(message);
        }
    }
}

enum Handled {
    /// Answered once this proposal applies (or fails to): with the outcome
    /// made from its index, or else `Committed` and the index.
    Later(ProposalId, Option<OnCommit>),
    Now(Outcome),
}

/// The answer to a proposal that applied at an index.
type OnCommit = Box<dyn FnOnce(u64) -> Outcome + Send>;

/// A request whose proposal has not applied yet.
struct Waiting {
    reply_to: UnboundedSender<Bytes>,
    id: u64,
    on_commit: Option<OnCommit>,
}

fn refused(controller: &Controller, e: BrokerError) -> Outcome {
    let leader = (e.code == ErrorCode::NotController).then(|| controller.leader()).flatten();
    Outcome::Refused { code: e.code.code(), message: e.message, leader }
}

fn handle(c: &mut Controller, ask: Ask, now: i64) -> Handled {
    let proposal = match ask {
        Ask::RegisterBroker { node_id, incarnation, endpoints } => {
            c.register_broker(node_id, incarnation, endpoints, now)
        }
        Ask::CreateTopic { name, partitions, replication_factor, configs } => {
            c.create_topic(&name, partitions, replication_factor, configs)
        }
        Ask::DeleteTopic { name } => c.delete_topic(&name),
        Ask::CreatePartitions { name, count } => c.create_partitions(&name, count),
        Ask::AlterTopicConfigs { name, expected, configs } => c.alter_topic_configs(&name, expected, configs),
        Ask::ChangeSecurity { changes } => c.change_security(changes),
        Ask::ControlledShutdown { node_id, incarnation } => c.controlled_shutdown(node_id, incarnation),
        Ask::AlterPartition { node_id, change } => {
            match c.alter_partition(node_id, &change) {
                Ok(Some(id)) => Ok(id),
                // Already so: answered at once, as of what is applied here.
                Ok(None) => return Handled::Now(Outcome::Committed(c.applied())),
                Err(e) => Err(e),
            }
        }
        Ask::AllocateProducerIds { node_id } => {
            return match c.allocate_producer_ids(node_id) {
                Ok((id, first)) => Handled::Later(
                    id,
                    Some(Box::new(move |_| Outcome::ProducerIds { first, count: PRODUCER_ID_BLOCK })),
                ),
                Err(e) => Handled::Now(refused(c, e)),
            }
        }
        Ask::ElectLeaders { election, partitions } => {
            return match c.elect_leaders(election, &partitions) {
                Ok((Some(id), outcomes)) => {
                    Handled::Later(id, Some(Box::new(move |index| Outcome::Elected { index, outcomes })))
                }
                // Nothing elected: true of the image as applied here.
                Ok((None, outcomes)) => Handled::Now(Outcome::Elected { index: c.applied(), outcomes }),
                Err(e) => Handled::Now(refused(c, e)),
            };
        }
        Ask::Image { after } => {
            let image = (c.applied() > after).then(|| Box::new(c.image().clone()));
            return Handled::Now(Outcome::Image { applied: c.applied(), leader: c.leader(), image });
        }
        Ask::BrokerHeartbeat { node_id, incarnation } => {
            return Handled::Now(match c.broker_heartbeat(node_id, incarnation, now) {
                Ok(state) => Outcome::Heartbeat { fenced: state.fenced },
                Err(e) => refused(c, e),
            })
        }
        Ask::Describe => {
            return Handled::Now(Outcome::Described(Box::new(QuorumStatus {
                node_id: c.node_id(),
                leader: c.leader(),
                term: c.term(),
                commit_index: c.commit_index(),
                applied: c.applied(),
                image: c.image().clone(),
            })))
        }
    };
    match proposal {
        Ok(id) => Handled::Later(id, None),
        Err(e) => Handled::Now(refused(c, e)),
    }
}
