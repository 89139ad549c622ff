//! A broker of a cluster: it follows the controller quorum's image (topics,
//! leaders, live brokers), sends topic changes and producer-id requests
//! through its `ControllerLink`, and refuses another cluster's image.
//! The quorum here is a stand-in (`common::quorum`).

mod common;

use common::quorum::{open, two_brokers, two_brokers_on, Quorum};
use common::{batches, produced_batch, produced_id, runtime};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::Acks;
use ringtail_engine::broker::{Broker, ControllerLink, ErrorCode, FollowError};
use ringtail_engine::controller::{plan, MetadataRecord};
use ringtail_engine::io::MemDisk;
use ringtail_engine::replica::{truncation, Truncation};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

const T0: i64 = 1_700_000_000_000;

fn new_topic(name: &str, partitions: u32, replication_factor: Option<i16>) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        partitions: Some(partitions),
        replication_factor,
        configs: BTreeMap::new(),
    }
}

/// Topics come from the quorum: replicas placed here get logs, the live
/// brokers and the controller are the image's, and a delete removes the
/// logs once the image without the topic is followed.
#[test]
fn topics_and_brokers_follow_the_image() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, 2).await;
        let quorum = Quorum::new("c1", 3);
        quorum.serve(&broker);
        assert_eq!(broker.cluster_id(), "", "a new data directory belongs to no cluster yet");
        quorum.commit(&[]).await;
        assert_eq!(broker.cluster_id(), "c1");
        assert_eq!(broker.brokers().iter().map(|b| b.node_id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(broker.controller_id(), 1);

        let err = broker.create_topic(new_topic("big", 1, Some(4)), false).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
        let t = broker.create_topic(new_topic("t", 3, None), false).await.unwrap();
        assert!(t.partitions.iter().all(|p| p.replicas.len() == 3), "the default: min(3, live brokers)");
        let hosted =
            |b: &Broker<MemDisk>| b.hosted_partitions().iter().map(|p| p.tp.to_string()).collect::<Vec<_>>();
        assert_eq!(hosted(&broker), ["t-0", "t-1", "t-2"]);
        let led: Vec<i32> = (0..3).filter(|p| broker.leader_partition("t", *p).is_ok()).collect();
        assert_eq!(led.len(), 1, "leaders spread over three brokers: {led:?}");
        let two = broker.create_topic(new_topic("two", 3, Some(1)), false).await.unwrap();
        let here = two.partitions.iter().filter(|p| p.replicas == [2]).count();
        assert_eq!(hosted(&broker).len(), 3 + here, "only replicas placed here are hosted");

        // A fenced leader: leadership moves off it in the image, and the
        // broker stops leading (its epoch moves with the image).
        let led_here = led[0];
        let before = broker.partition("t", led_here).unwrap().leader_epoch();
        let fence = plan::fence(&quorum.image(), 2, 1);
        quorum.commit(&fence).await;
        assert!(broker.leader_partition("t", led_here).is_err());
        assert!(!broker.brokers().iter().any(|b| b.node_id == 2));
        assert_eq!(broker.fenced_brokers().iter().map(|b| b.node_id).collect::<Vec<_>>(), [2]);
        let image = quorum.image();
        let p = &image.topics["t"].partitions[led_here as usize];
        assert_eq!(p.leader, -1, "the leader was its ISR alone: offline, never moved to a follower");
        let unfence = plan::unfence(&image, 2, 1);
        quorum.commit(&unfence).await;
        assert!(broker.leader_partition("t", led_here).is_ok(), "back in its own ISR, it leads again");
        assert!(broker.partition("t", led_here).unwrap().leader_epoch() > before);

        broker.delete_topic("t").await.unwrap();
        assert!(broker.partition("t", 0).is_none());
        assert!(!broker.topics().contains_key("t"));
    });
}

/// An image older than one followed changes nothing; a restart keeps the
/// cluster id and topics; another cluster's image is refused.
#[test]
fn stale_images_are_ignored_and_another_cluster_is_refused() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, 1).await;
        let quorum = Quorum::new("c1", 1);
        quorum.serve(&broker);
        quorum.commit(&[]).await;
        let old = quorum.image();
        broker.create_topic(new_topic("t", 2, None), false).await.unwrap();
        broker.follow_image(&old, 1, Some(1)).await.unwrap();
        assert!(broker.topics().contains_key("t"), "an older image is not followed");

        broker.close().await.unwrap();
        drop(broker);
        let broker = open(&disk, 1).await;
        assert_eq!(broker.cluster_id(), "c1");
        assert!(broker.topics().contains_key("t") && broker.partition("t", 1).is_some());
        // After the restart too: a lagging voter's older image, without the
        // topic, deletes nothing (found by the replication scenario, seed 123).
        broker.follow_image(&old, 1, Some(1)).await.unwrap();
        assert!(broker.topics().contains_key("t") && broker.partition("t", 1).is_some());
        let other = Quorum::new("c2", 1);
        let refused = broker.follow_image(&other.image(), 9, Some(1)).await.unwrap_err();
        assert!(matches!(refused, FollowError::OtherCluster { .. }), "{refused}");
        assert!(refused.to_string().contains("cluster c1") && refused.to_string().contains("cluster c2"));
        assert!(broker.partition("t", 0).is_some(), "nothing of the other cluster was applied");
    });
}

/// Producer ids come in blocks from the quorum; no id is handed out twice,
/// across blocks or restarts.
#[test]
fn producer_ids_come_from_the_quorum_in_blocks() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, 1).await;
        let quorum = Quorum::new("c1", 1);
        quorum.serve(&broker);
        quorum.commit(&[]).await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(broker.init_producer_id().await.unwrap().0);
        }
        assert_eq!(ids, [0, 1, 2, 3, 4], "blocks of three, one after another");
        broker.close().await.unwrap();
        drop(broker);
        let broker = open(&disk, 1).await;
        quorum.serve(&broker);
        assert_eq!(broker.init_producer_id().await.unwrap().0, 6, "a restart takes a fresh block");
    });
}

/// One round of `follower` replicating `topic`'s partition 0 from `leader`,
/// as the server's fetcher does: truncation under a new leader epoch (the
/// leader's OffsetForLeaderEpoch answer from its checkpoint), then a fetch
/// from its log end and the append.
async fn replicate(leader: &Broker<MemDisk>, follower: &Broker<MemDisk>, topic: &str) {
    let f = follower.partition(topic, 0).unwrap();
    let (leader_id, epoch) = f.follows().expect("it follows");
    assert_eq!(leader_id, leader.node_id());
    let l = leader.partition(topic, 0).unwrap();
    if let Some((asked, _)) = f.log.leader_epochs().latest() {
        let answer = l.log.end_of_epoch(asked);
        let own = f.log.leader_epochs();
        let decision = truncation(&own, f.log.log_end_offset(), asked, answer, f.high_watermark());
        let Truncation::To(offset) = decision else { panic!("{decision:?}") };
        follower.truncate_follower(&f, leader_id, epoch, offset).await.unwrap();
    }
    let at = f.log.log_end_offset() as i64;
    let fetched = l.replica_fetch(follower.node_id(), at, 1 << 20, leader.now_ms()).await.unwrap();
    f.append_as_follower(leader_id, epoch, fetched.records, fetched.high_watermark).await.unwrap();
}

/// Polls `future` once: its output if it is ready.
async fn poll_once<F: Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut future).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Two brokers replicate a partition: the follower joins the ISR once
/// caught up, acks=all completes only once it has the records, and after
/// the leader is fenced the follower leads with every acknowledged record,
/// while the old leader's unreplicated tail is cut when it follows again,
/// leaving the two logs equal byte for byte. A restarted incarnation does
/// not take back a leadership (C4).
#[test]
fn two_brokers_replicate_fail_over_and_converge() {
    runtime().block_on(async {
        let quorum = Quorum::new("c1", 2);
        let (b1, b2) = two_brokers(&quorum).await;
        b1.create_topic(new_topic("r", 1, Some(2)), false).await.unwrap();
        let p1 = b1.partition("r", 0).unwrap();
        assert!(p1.is_leader() && p1.isr() == Some(vec![1]), "{:?}", p1.isr());
        for i in 0..3 {
            p1.produce(produced_batch(2, i, T0, 50), Acks::Leader).await.unwrap();
        }
        assert_eq!(p1.high_watermark(), 6, "alone in the ISR, its log is committed");

        // The follower catches up and joins the ISR.
        replicate(&b1, &b2, "r").await;
        replicate(&b1, &b2, "r").await;
        b1.replication_tick().await;
        assert_eq!(quorum.image().topics["r"].partitions[0].isr, [1, 2]);
        assert_eq!(p1.isr(), Some(vec![1, 2]));

        // acks=all: done once the follower has it, not before.
        let out = p1.produce(produced_batch(1, 10, T0, 50), Acks::All).await.unwrap();
        let mut waiting = Box::pin(p1.wait_replicated(out.last_offset));
        assert!(poll_once(waiting.as_mut()).await.is_none(), "replicated before the follower fetched");
        replicate(&b1, &b2, "r").await; // gets offset 6
        replicate(&b1, &b2, "r").await; // reports 7: the high watermark moves
        waiting.await.unwrap();

        // An acks=1 record the follower never gets, then the leader is fenced.
        p1.produce(produced_batch(1, 11, T0, 50), Acks::Leader).await.unwrap();
        assert_eq!(p1.log.log_end_offset(), 8);
        let fence = plan::fence(&quorum.image(), 1, 1);
        quorum.commit(&fence).await;
        let p2 = b2.partition("r", 0).unwrap();
        assert!(p2.is_leader() && !p1.is_leader());
        assert_eq!(p2.leader_epoch(), 1);
        assert_eq!(p2.log.leader_epochs().entries(), [(0, 0), (1, 7)]);
        let read = p2.fetch(0, 1 << 20).await.unwrap();
        let ids: Vec<u64> = batches(&read.records).iter().map(|(_, b)| produced_id(b)).collect();
        assert_eq!(ids, [0, 1, 2, 10], "every acknowledged acks=all record; not the unreplicated one");

        // Broker 1 restarts (a new incarnation) and follows broker 2: its
        // unreplicated tail is cut, and the logs agree.
        let again = MetadataRecord::RegisterBroker { node_id: 1, incarnation: 2, endpoints: Vec::new() };
        quorum.commit(&[again]).await;
        b1.set_incarnation(2);
        p2.produce(produced_batch(1, 12, T0, 50), Acks::Leader).await.unwrap();
        replicate(&b2, &b1, "r").await;
        replicate(&b2, &b1, "r").await;
        let all1 = p1.log.read(0, 1 << 20, None).await.unwrap().records;
        let all2 = p2.log.read(0, 1 << 20, None).await.unwrap().records;
        assert_eq!(all1, all2, "byte for byte");
        assert_eq!(p1.log.leader_epochs(), p2.log.leader_epochs());
        quorum.commit(&plan::unfence(&quorum.image(), 1, 2)).await;
        assert!(!p1.is_leader(), "broker 2 leads: nothing moved it");
    });
}

/// A follower whose log ends below its leader's log start (retention
/// deleted what it would fetch next while it was away) is refused as out of
/// range, starts over, empty, at the leader's log start, catches up from
/// there and joins the ISR, the two logs then equal from that start.
/// Retention deletes only below the high watermark: while the follower is
/// in the ISR and behind, the leader keeps what it has yet to copy.
#[test]
fn a_follower_below_the_leaders_log_start_starts_over_there() {
    runtime().block_on(async {
        let quorum = Quorum::new("c1", 2);
        let (b1, b2) = two_brokers(&quorum).await;
        let mut topic = new_topic("s", 1, Some(2));
        topic.configs =
            [("segment.bytes", "300"), ("retention.bytes", "400")].map(|(k, v)| (k.into(), v.into())).into();
        b1.create_topic(topic, false).await.unwrap();
        let (p1, p2) = (b1.partition("s", 0).unwrap(), b2.partition("s", 0).unwrap());
        assert_eq!(p1.isr(), Some(vec![1]), "broker 2 has copied nothing yet");
        for i in 0..12 {
            p1.produce(produced_batch(2, i, T0, 50), Acks::All).await.unwrap();
        }
        b1.maintain().await;
        let start = p1.log.log_start_offset();
        assert!(start > 0, "retention moved the leader's log start");

        let refused = p1.replica_fetch(2, 0, 1 << 20, b1.now_ms()).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::OffsetOutOfRange);
        let (leader, epoch) = p2.follows().unwrap();
        b2.restart_follower_at(&p2, leader, epoch, start).await.unwrap();
        assert_eq!((p2.log.log_start_offset(), p2.log.log_end_offset()), (start, start));
        assert!(p2.log.leader_epochs().entries().is_empty(), "it learns them again from the leader");
        // A fetch reads up to a segment's end: a round per segment, and one
        // more to report the log end that lets it join.
        for _ in 0..=p1.log.segment_base_offsets().len() {
            replicate(&b1, &b2, "s").await;
        }
        b1.replication_tick().await;
        assert_eq!(quorum.image().topics["s"].partitions[0].isr, [1, 2]);
        let all1 = p1.log.read(start, 1 << 20, None).await.unwrap().records;
        let all2 = p2.log.read(start, 1 << 20, None).await.unwrap().records;
        assert_eq!(all1, all2, "byte for byte from the leader's log start");
        // The follower knows epoch 0 from its first batch on; where it ends
        // (all OffsetForLeaderEpoch asks) agrees.
        assert_eq!(p2.log.leader_epochs().entries(), [(0, start)]);
        assert_eq!(p1.log.end_of_epoch(0), p2.log.end_of_epoch(0));

        // In the ISR and behind: the leader's retention keeps its segments.
        let end = p1.log.log_end_offset();
        for i in 20..32 {
            p1.produce(produced_batch(2, i, T0, 50), Acks::Leader).await.unwrap();
        }
        assert_eq!(p1.high_watermark(), end, "the follower has not copied the new records");
        b1.maintain().await;
        assert!(p1.log.log_start_offset() <= end, "nothing at or above the high watermark deleted");
        let fetched = p1.replica_fetch(2, end as i64, 1 << 20, b1.now_ms()).await.unwrap();
        assert!(!fetched.records.is_empty());
    });
}

/// Topic changes through the quorum reach every broker following it: a
/// growth asked at one broker gives the new partitions leaders on both,
/// which take records; a config change asked at the other applies to the
/// running logs of every replica (retention) and to the leader's
/// acks=all check (`min.insync.replicas`); a restart keeps both. Asked
/// from a stale view, a growth or a change is refused, not applied twice.
#[test]
fn partitions_and_configs_change_through_the_quorum() {
    use ringtail_engine::broker::topic_configs::{ConfigChange, ConfigOp};
    runtime().block_on(async {
        let quorum = Quorum::new("c1", 2);
        let (disk1, disk2) = (Arc::new(MemDisk::new()), Arc::new(MemDisk::new()));
        let (b1, b2) = two_brokers_on(&quorum, &disk1, &disk2).await;
        b1.create_topic(new_topic("g", 1, Some(2)), false).await.unwrap();
        let would = b2.create_partitions("g", 3, true).await.unwrap();
        assert_eq!((would.partitions.len(), quorum.image().topics["g"].partitions.len()), (3, 1));

        b1.create_partitions("g", 3, false).await.unwrap();
        let image = quorum.image();
        let leaders: Vec<i32> = image.topics["g"].partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, [1, 2, 1], "the new partitions continue the stripe");
        for b in [&b1, &b2] {
            assert_eq!(b.topics()["g"].partitions.len(), 3, "broker {} follows the growth", b.node_id());
            assert!(b.partition("g", 2).is_some(), "broker {} hosts the new replicas", b.node_id());
        }
        for (p, leader) in [(1, &b2), (2, &b1)] {
            let partition = leader.leader_partition("g", p).unwrap();
            partition.produce(produced_batch(1, 70 + p as u64, T0, 50), Acks::Leader).await.unwrap();
            let read = partition.fetch(0, 1 << 20).await.unwrap();
            let ids: Vec<u64> = batches(&read.records).iter().map(|(_, b)| produced_id(b)).collect();
            assert_eq!(ids, [70 + p as u64]);
        }
        let again = b2.create_partitions("g", 3, false).await.unwrap_err();
        assert_eq!(
            (again.code, again.message.as_str()),
            (ErrorCode::InvalidPartitions, "Topic already has 3 partition(s).")
        );

        let set = |key: &str, value: &str| ConfigOp::Set { key: key.into(), value: value.into() };
        let change =
            ConfigChange::Incremental(vec![set("retention.ms", "5000"), set("min.insync.replicas", "2")]);
        let bad = ConfigChange::Incremental(vec![set("retention.ms", "never")]);
        assert_eq!(
            b2.alter_topic_configs("g", &bad, false).await.unwrap_err().code,
            ErrorCode::InvalidConfig
        );
        b2.alter_topic_configs("g", &change, false).await.unwrap();
        assert_eq!(quorum.image().topics["g"].configs.len(), 2);
        for b in [&b1, &b2] {
            for p in 0..3 {
                let log = b.partition("g", p).unwrap().log.clone();
                assert_eq!(log.config().retention_ms, Some(5000), "broker {} g-{p}", b.node_id());
            }
        }
        let p0 = b1.leader_partition("g", 0).unwrap();
        assert_eq!(p0.isr(), Some(vec![1]), "broker 2 has not caught up");
        let short = p0.produce(produced_batch(1, 80, T0, 50), Acks::All).await.unwrap_err();
        assert_eq!(short.code, ErrorCode::NotEnoughReplicas, "the leader reads the new minimum");
        // Computed from overrides the quorum has since changed: refused.
        let stale =
            quorum.alter_topic_configs("g".into(), BTreeMap::new(), BTreeMap::new()).await.unwrap_err();
        assert_eq!(stale.code, ErrorCode::InvalidUpdateVersion);
        let delete = ConfigChange::Incremental(vec![ConfigOp::Delete { key: "min.insync.replicas".into() }]);
        b1.alter_topic_configs("g", &delete, false).await.unwrap();
        p0.produce(produced_batch(1, 81, T0, 50), Acks::All).await.unwrap();

        for b in [&b1, &b2] {
            b.close().await.unwrap();
        }
        drop((p0, b1, b2));
        for (disk, id) in [(&disk1, 1), (&disk2, 2)] {
            let b = open(disk, id).await;
            assert_eq!(b.topics()["g"].partitions.len(), 3, "broker {id} after a restart");
            assert_eq!(b.topics()["g"].configs.get("retention.ms").map(String::as_str), Some("5000"));
            assert_eq!(b.partition("g", 2).unwrap().log.config().retention_ms, Some(5000));
        }
    });
}
