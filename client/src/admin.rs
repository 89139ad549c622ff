//! Topic administration: create, grow, delete, list, describe, configs,
//! leader elections.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    ElectLeadersRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::error::{check, ClientError, Result};
use super::metadata::TopicInfo;

/// DescribeConfigs' and IncrementalAlterConfigs' resource type for topics.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs' operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// A topic to create. `None` leaves the choice to the broker's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: Vec<(String, String)>,
}

/// One change of a topic config (IncrementalAlterConfigs' SET and DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set {
        key: String,
        value: String,
    },
    /// Back to the broker's default.
    Delete {
        key: String,
    },
}

/// One topic configuration entry as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive or unset values.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub is_sensitive: bool,
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic itself.
    Topic,
    /// A broker-wide setting or default.
    Broker,
    /// The built-in default.
    Default,
    Unknown,
}

impl ConfigSource {
    fn from_wire(source: i8) -> ConfigSource {
        match source {
            1 => ConfigSource::Topic,
            2..=4 => ConfigSource::Broker,
            5 => ConfigSource::Default,
            _ => ConfigSource::Unknown,
        }
    }
}

/// Which leader an election picks (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica, when it is live and in sync.
    Preferred,
    /// For a partition without a leader: any live replica, even one not in
    /// sync (records only the lost replicas had are gone).
    Unclean,
}

impl ElectionType {
    fn wire(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }
}

/// How one partition's election went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionOutcome {
    pub topic: String,
    pub partition: i32,
    /// 0 when a new leader was elected; ELECTION_NOT_NEEDED, say, when not.
    pub error_code: i16,
    pub message: Option<String>,
}

impl Client {
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<()> {
        let timeout_ms = self.timeout_ms();
        let request = |_version| {
            let configs = topic
                .configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect();
            // -1 asks for the broker's default (CreateTopics v4 and later).
            let new = CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                .with_num_partitions(topic.partitions.unwrap_or(-1))
                .with_replication_factor(topic.replication_factor.unwrap_or(-1))
                .with_configs(configs);
            CreateTopicsRequest::default().with_topics(vec![new]).with_timeout_ms(timeout_ms)
        };
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        let result = response.topics.iter().find(|t| t.name.0.as_str() == topic.name).ok_or_else(|| {
            ClientError::Protocol {
                addr: "controller".to_owned(),
                reason: format!("CreateTopics response does not mention {}", topic.name),
            }
        })?;
        check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
            format!("create topic {}", topic.name)
        })
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let timeout_ms = self.timeout_ms();
        let request = |version| {
            let topic_name = TopicName(StrBytes::from_string(name.to_owned()));
            // v6 names topics in structs (which may carry ids instead);
            // earlier versions in a plain list.
            let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
            if version >= 6 {
                request.with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name))])
            } else {
                request.with_topic_names(vec![topic_name])
            }
        };
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        let result = response
            .responses
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| ClientError::Protocol {
                addr: "controller".to_owned(),
                reason: format!("DeleteTopics response does not mention {name}"),
            })?;
        check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
            format!("delete topic {name}")
        })
    }

    /// Grows the topic to `count` partitions (CreatePartitions); the
    /// broker places them.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<()> {
        let timeout_ms = self.timeout_ms();
        let request = |_version| {
            let topic = CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_count(count)
                .with_assignments(None);
            CreatePartitionsRequest::default().with_topics(vec![topic]).with_timeout_ms(timeout_ms)
        };
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        let result = response.results.iter().find(|t| t.name.0.as_str() == name).ok_or_else(|| {
            ClientError::Protocol {
                addr: "controller".to_owned(),
                reason: format!("CreatePartitions response does not mention {name}"),
            }
        })?;
        check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
            format!("create partitions of {name}")
        })
    }

    /// Changes some of the topic's configs (IncrementalAlterConfigs),
    /// leaving the others as they are.
    pub async fn alter_topic_configs(&self, name: &str, ops: &[AlterConfigOp]) -> Result<()> {
        let request = |_version| {
            let configs = ops
                .iter()
                .map(|op| {
                    let (key, operation, value) = match op {
                        AlterConfigOp::Set { key, value } => (key, OP_SET, Some(value)),
                        AlterConfigOp::Delete { key } => (key, OP_DELETE, None),
                    };
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.clone()))
                        .with_config_operation(operation)
                        .with_value(value.map(|v| StrBytes::from_string(v.clone())))
                })
                .collect();
            let resource = AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configs(configs);
            IncrementalAlterConfigsRequest::default().with_resources(vec![resource])
        };
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        let result =
            response.responses.iter().find(|r| r.resource_name.as_str() == name).ok_or_else(|| {
                ClientError::Protocol {
                    addr: "controller".to_owned(),
                    reason: format!("IncrementalAlterConfigs response does not mention {name}"),
                }
            })?;
        check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
            format!("alter configs of {name}")
        })
    }

    /// Elects leaders of `partitions` of `topic` (ElectLeaders), or of
    /// each of its partitions if `None`: each partition's outcome.
    pub async fn elect_leaders(
        &self,
        topic: &str,
        partitions: Option<&[i32]>,
        election: ElectionType,
    ) -> Result<Vec<ElectionOutcome>> {
        let partitions = match partitions {
            Some(p) => p.to_vec(),
            None => self.describe_topic(topic).await?.partitions.iter().map(|p| p.partition).collect(),
        };
        let timeout_ms = self.timeout_ms();
        let request = |_version| {
            let topic = TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(partitions.clone());
            ElectLeadersRequest::default()
                .with_election_type(election.wire())
                .with_topic_partitions(Some(vec![topic]))
                .with_timeout_ms(timeout_ms)
        };
        let response = self
            .with_retries(None, false, || async {
                let response = self.controller_connection().await?.request(request).await?;
                check(response.error_code, None, || format!("elect leaders of {topic}"))?;
                Ok(response)
            })
            .await?;
        let outcomes = response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| ElectionOutcome {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    error_code: p.error_code,
                    message: p.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect();
        Ok(outcomes)
    }

    /// Every topic the cluster has, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let metadata = self.fetch_metadata(None).await?;
        Ok(metadata.topics.into_values().collect())
    }

    /// The topic's partitions, leaders, replicas and ISR, fresh from a broker.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        self.refresh_topic(name).await
    }

    /// Every configuration entry of the topic, sorted by name.
    pub async fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>> {
        let connection = self.any_connection().await?;
        let response = connection
            .request(|_version| {
                let resource = DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TYPE_TOPIC)
                    .with_resource_name(StrBytes::from_string(name.to_owned()))
                    .with_configuration_keys(None);
                DescribeConfigsRequest::default().with_resources(vec![resource])
            })
            .await?;
        let result = response.results.iter().find(|r| r.resource_name.as_str() == name).ok_or_else(|| {
            ClientError::Protocol {
                addr: connection.addr().to_owned(),
                reason: format!("DescribeConfigs response does not mention {name}"),
            }
        })?;
        check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
            format!("describe configs of {name}")
        })?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.as_str().to_owned(),
                value: c.value.as_ref().map(|v| v.as_str().to_owned()),
                source: ConfigSource::from_wire(c.config_source),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}
