//! The request's shape, kept before the handler consumes it: what the
//! response must answer and what the request may change.

use kafka_protocol::messages::RequestKind;
use ringtail_engine::log::TopicPartition;
use ringtail_server::protocol::request::Request;

/// The request's shape, kept before the handler consumes it.
#[derive(Debug)]
pub(super) enum Asked {
    Produce {
        acks: i16,
        partitions: Vec<TopicPartition>,
        shape: Vec<usize>,
    },
    Fetch {
        shape: Vec<usize>,
    },
    ListOffsets {
        shape: Vec<usize>,
    },
    /// `topics`: the answers due, `None` for all topics.
    Metadata {
        topics: Option<usize>,
        may_create: bool,
    },
    CreateTopics {
        count: usize,
        validate_only: bool,
    },
    DeleteTopics {
        count: usize,
    },
    DescribeConfigs {
        count: usize,
    },
    OffsetForLeaderEpoch {
        shape: Vec<usize>,
    },
    Other,
}

/// `[topics, partitions of the first, partitions of the second, ...]`.
pub(super) fn shape<T>(topics: &[T], partitions: impl Fn(&T) -> usize) -> Vec<usize> {
    std::iter::once(topics.len()).chain(topics.iter().map(partitions)).collect()
}

/// A Fetch is answered once per partition however often it is named (the
/// first naming counts: Kafka keeps a fetch's partitions in a map), in runs
/// of one topic (by name, or by topic id from v13), in the order asked.
fn fetch_shape(r: &kafka_protocol::messages::FetchRequest, version: i16) -> Vec<usize> {
    let mut seen = std::collections::BTreeSet::new();
    let mut runs: Vec<(String, usize)> = Vec::new();
    for t in &r.topics {
        let topic = if version >= 13 { t.topic_id.to_string() } else { t.topic.to_string() };
        for p in &t.partitions {
            if !seen.insert((topic.clone(), p.partition)) {
                continue;
            }
            match runs.last_mut() {
                Some((name, n)) if *name == topic => *n += 1,
                _ => runs.push((topic.clone(), 1)),
            }
        }
    }
    std::iter::once(runs.len()).chain(runs.iter().map(|(_, n)| *n)).collect()
}

impl Asked {
    pub(super) fn of(request: &Request) -> Asked {
        let version = request.version();
        match &request.body {
            RequestKind::Produce(r) => Asked::Produce {
                acks: r.acks,
                partitions: r
                    .topic_data
                    .iter()
                    .flat_map(|t| {
                        t.partition_data.iter().map(|p| TopicPartition::new(t.name.as_str(), p.index))
                    })
                    .collect(),
                shape: shape(&r.topic_data, |t| t.partition_data.len()),
            },
            RequestKind::Fetch(r) => Asked::Fetch { shape: fetch_shape(r, version) },
            RequestKind::ListOffsets(r) => {
                Asked::ListOffsets { shape: shape(&r.topics, |t| t.partitions.len()) }
            }
            RequestKind::Metadata(r) => Asked::Metadata {
                topics: match &r.topics {
                    Some(list) if !(version == 0 && list.is_empty()) => Some(list.len()),
                    _ => None,
                },
                may_create: version < 4 || r.allow_auto_topic_creation,
            },
            RequestKind::CreateTopics(r) => {
                Asked::CreateTopics { count: r.topics.len(), validate_only: r.validate_only }
            }
            RequestKind::DeleteTopics(r) => {
                Asked::DeleteTopics { count: if version >= 6 { r.topics.len() } else { r.topic_names.len() } }
            }
            RequestKind::DescribeConfigs(r) => Asked::DescribeConfigs { count: r.resources.len() },
            RequestKind::OffsetForLeaderEpoch(r) => {
                Asked::OffsetForLeaderEpoch { shape: shape(&r.topics, |t| t.partitions.len()) }
            }
            _ => Asked::Other,
        }
    }
}
