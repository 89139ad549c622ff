//! DescribeLogDirs: the one log directory (the data directory) and the
//! size of every partition replica it holds, leader or follower, as
//! kafka-log-dirs, kafka-ui and AKHQ show them. A partition asked for that
//! is not hosted here is left out, as Kafka does. `offset_lag` is 0: it is
//! the lag of a replica being moved between directories, which Ringtail
//! never does; from v4, the file system's total and usable bytes. Needs
//! DESCRIBE on the cluster (else no directories, and from v3 the code).

use super::{str_bytes, topic_name, Context};
use crate::disk_space;
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;
use std::collections::{BTreeMap, BTreeSet};

pub fn handle(ctx: &Context, access: Access<'_>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !access.cluster(Operation::Describe) {
        // Below v3 there is no field for it: the answer is just empty.
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    // None: every partition; otherwise topic -> the partitions asked for.
    let wanted: Option<BTreeMap<String, BTreeSet<i32>>> = request.topics.map(|topics| {
        let mut wanted: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for t in topics {
            wanted.entry(t.topic.0.to_string()).or_default().extend(t.partitions);
        }
        wanted
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in ctx.broker.hosted_partitions() {
        let asked = match &wanted {
            None => true,
            Some(w) => w.get(&p.tp.topic).is_some_and(|parts| parts.contains(&p.tp.partition)),
        };
        if !asked {
            continue;
        }
        let (_, bytes) = p.log.segment_stats();
        by_topic.entry(p.tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.tp.partition)
                .with_partition_size(i64::try_from(bytes).unwrap_or(i64::MAX)),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default().with_name(topic_name(name)).with_partitions(partitions)
        })
        .collect();
    let dir = ctx.disk_guard.dir();
    let space = disk_space::space(dir);
    let bytes = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(bytes(space.map(|s| s.total)))
        .with_usable_bytes(bytes(space.map(|s| s.usable)));
    DescribeLogDirsResponse::default().with_results(vec![result])
}
