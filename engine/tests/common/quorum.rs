//! A stand-in for the controller quorum, for tests of cluster brokers: an
//! image that the real `plan` functions change, committed at once and
//! followed by every broker it serves.

use super::clock;
use ringtail_engine::broker::{
    Broker, BrokerConfig, BrokerEndpoint, ControllerLink, ElectionType, IsrChange, LinkFuture,
    PartitionElection, Wanted,
};
use ringtail_engine::controller::{plan, Endpoint, MetadataImage, MetadataRecord};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::LogConfig;
use ringtail_engine::security::state::SecurityChange;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

pub fn config(node_id: i32) -> BrokerConfig {
    BrokerConfig {
        node_id,
        advertised: BrokerEndpoint { node_id, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 1,
        default_replication_factor: None,
        auto_create_topics: false,
        topic_defaults: LogConfig::default(),
        group: ringtail_engine::group::GroupConfig::default(),
        log_cache_bytes: 1 << 20,
        quorum: true,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
    }
}

pub async fn open(disk: &Arc<MemDisk>, node_id: i32) -> Arc<Broker<MemDisk>> {
    let (broker, _) = Broker::open(
        disk.clone(),
        PathBuf::from("/data"),
        config(node_id),
        clock(),
        Arc::new(SeededEntropy::new(5)),
    )
    .await
    .unwrap();
    Arc::new(broker)
}

/// The quorum's committed image and the index it is at.
pub struct Quorum {
    state: Mutex<(MetadataImage, u64)>,
    /// Every broker served follows each commit.
    brokers: Mutex<Vec<Weak<Broker<MemDisk>>>>,
}

impl Quorum {
    /// A formed cluster with brokers 1..=n registered and live.
    pub fn new(cluster_id: &str, live: i32) -> Arc<Quorum> {
        let mut image = MetadataImage::default();
        image.apply(&MetadataRecord::ClusterId { cluster_id: cluster_id.into() });
        for id in 1..=live {
            let endpoint =
                Endpoint { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9090 + id as u16 };
            image.apply(&MetadataRecord::RegisterBroker {
                node_id: id,
                incarnation: 1,
                endpoints: vec![endpoint],
            });
            image.apply(&MetadataRecord::UnfenceBroker { node_id: id, incarnation: 1 });
        }
        Arc::new(Quorum { state: Mutex::new((image, 1)), brokers: Mutex::new(Vec::new()) })
    }

    pub fn serve(self: &Arc<Self>, broker: &Arc<Broker<MemDisk>>) {
        self.brokers.lock().unwrap().push(Arc::downgrade(broker));
        broker.attach_controller(self.clone());
    }

    /// Commits `records` and has the broker follow the new image.
    pub async fn commit(&self, records: &[MetadataRecord]) {
        let (image, applied) = {
            let mut state = self.state.lock().unwrap();
            for r in records {
                state.0.apply(r);
            }
            state.1 += 1;
            state.clone()
        };
        let brokers: Vec<_> = self.brokers.lock().unwrap().iter().filter_map(Weak::upgrade).collect();
        assert!(!brokers.is_empty(), "a broker follows");
        for broker in brokers {
            broker.follow_image(&image, applied, Some(1)).await.unwrap();
        }
    }

    pub fn image(&self) -> MetadataImage {
        self.state.lock().unwrap().0.clone()
    }
}

impl ControllerLink for Quorum {
    fn create_topic(
        &self,
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let image = self.image();
            let id = format!("{:032x}", image.topics_created + 1);
            let record = plan::create_topic(&image, &name, id, partitions, replication_factor, configs)?;
            self.commit(&[record]).await;
            Ok(())
        })
    }

    fn delete_topic(&self, name: String) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let topic_id = self.image().topics[&name].topic_id.clone();
            self.commit(&[MetadataRecord::DeleteTopic { name, topic_id }]).await;
            Ok(())
        })
    }

    fn create_partitions(&self, name: String, count: i32) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let record = plan::create_partitions(&self.image(), &name, count)?;
            self.commit(&[record]).await;
            Ok(())
        })
    }

    fn alter_topic_configs(
        &self,
        name: String,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let record = plan::alter_topic_configs(&self.image(), &name, expected, configs)?;
            self.commit(&[record]).await;
            Ok(())
        })
    }

    fn alter_partition(&self, change: IsrChange) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let image = self.image();
            let (_, topic) = image.topic_by_id(&change.topic_id).expect("a topic");
            let leader = topic.partitions[change.partition as usize].leader;
            let record = plan::alter_isr(&image, leader, &change)?;
            self.commit(&record.into_iter().collect::<Vec<_>>()).await;
            Ok(())
        })
    }

    fn elect_leaders(
        &self,
        election: ElectionType,
        wanted: Wanted,
    ) -> LinkFuture<'_, Vec<PartitionElection>> {
        Box::pin(async move {
            let (records, outcomes) = plan::elect_leaders(&self.image(), election, &wanted);
            self.commit(&records).await;
            Ok(outcomes)
        })
    }

    fn change_security(&self, changes: Vec<SecurityChange>) -> LinkFuture<'_, ()> {
        Box::pin(async move {
            let records: Vec<MetadataRecord> = changes.into_iter().map(MetadataRecord::Security).collect();
            self.commit(&records).await;
            Ok(())
        })
    }

    fn allocate_producer_ids(&self) -> LinkFuture<'_, (i64, i64)> {
        Box::pin(async move {
            let first = self.image().next_producer_id;
            self.commit(&[MetadataRecord::ProducerIds { node_id: 1, first, count: 3 }]).await;
            Ok((first, 3))
        })
    }
}

/// Brokers 1 and 2, each on a disk of its own, registered (incarnation 1)
/// and following `quorum`'s first image.
pub async fn two_brokers(quorum: &Arc<Quorum>) -> (Arc<Broker<MemDisk>>, Arc<Broker<MemDisk>>) {
    two_brokers_on(quorum, &Arc::new(MemDisk::new()), &Arc::new(MemDisk::new())).await
}

/// `two_brokers` on disks of the caller's, which a test reopens a broker on.
pub async fn two_brokers_on(
    quorum: &Arc<Quorum>,
    disk1: &Arc<MemDisk>,
    disk2: &Arc<MemDisk>,
) -> (Arc<Broker<MemDisk>>, Arc<Broker<MemDisk>>) {
    let (b1, b2) = (open(disk1, 1).await, open(disk2, 2).await);
    for b in [&b1, &b2] {
        b.set_incarnation(1);
        quorum.serve(b);
    }
    quorum.commit(&[]).await;
    (b1, b2)
}
