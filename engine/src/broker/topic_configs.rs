//! Changing a topic's configs while it runs (Kafka's AlterConfigs and
//! IncrementalAlterConfigs). The new set of overrides is checked as
//! CreateTopics checks it (`check_topic_configs`), persisted (or agreed by
//! the quorum), and then reaches the running logs (`Log::set_config`) and
//! what the broker and the controller read from the metadata
//! (`min.insync.replicas`, `unclean.leader.election.enable`).

use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::group::is_internal_topic;
use crate::io::Disk;
use std::collections::BTreeMap;

/// A topic's config overrides, by key.
type Configs = BTreeMap<String, String>;

/// Topic configs whose value is a comma-separated list (Kafka's LIST
/// type): the only ones APPEND and SUBTRACT apply to.
pub const LIST_CONFIGS: [&str; 1] = ["cleanup.policy"];

/// One operation of IncrementalAlterConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOp {
    /// The key's override becomes `value`.
    Set { key: String, value: String },
    /// The key's override goes: the broker's default applies again.
    Delete { key: String },
    /// List configs only: the comma-separated `value`s not in the list yet
    /// are added to it (to the default's list when there is no override).
    Append { key: String, value: String },
    /// List configs only: the comma-separated `value`s leave the list.
    Subtract { key: String, value: String },
}

impl ConfigOp {
    pub fn key(&self) -> &str {
        match self {
            ConfigOp::Set { key, .. }
            | ConfigOp::Delete { key }
            | ConfigOp::Append { key, .. }
            | ConfigOp::Subtract { key, .. } => key,
        }
    }
}

/// What a config change asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// AlterConfigs: these become the topic's overrides; every key not
    /// named goes back to its default.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs, in order. The server refuses requests that
    /// name a key twice, as Kafka does; here the last one would win.
    Incremental(Vec<ConfigOp>),
}

impl<D: Disk> Broker<D> {
    /// Changes topic `name`'s config overrides; with `validate_only`, only
    /// says whether it would. Returns the overrides as they are (or would
    /// be) after the change. A change that changes nothing writes nothing.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<BTreeMap<String, String>, BrokerError> {
        if is_internal_topic(name) {
            // Its retention is off on purpose: committed offsets must not
            // expire with time or size.
            let msg = format!("{name} is internal: its configs are the group coordinator's");
            return Err(BrokerError::new(ErrorCode::InvalidRequest, msg));
        }
        if self.config.quorum && !validate_only {
            let (current, next) = self.next_topic_configs(name, change)?;
            if current != next {
                // Applied here once this broker follows the image with it.
                self.link()?.alter_topic_configs(name.to_string(), current, next.clone()).await?;
                tracing::info!(topic = name, configs = ?next, "altered topic configs");
            }
            return Ok(next);
        }
        // The check and the change under one lock: two changes cannot both
        // start from the same overrides and lose one.
        let _one = self.metadata_changes.lock().await;
        let (current, next) = self.next_topic_configs(name, change)?;
        if validate_only || current == next {
            return Ok(next);
        }
        // `next_topic_configs` found the topic, under the same lock.
        let topic = self.metadata().topics.get(name).cloned();
        if let Some(mut topic) = topic {
            topic.configs = next.clone();
            self.put_topic(name, topic).await?;
        }
        tracing::info!(topic = name, configs = ?next, "altered topic configs");
        Ok(next)
    }

    /// The topic's overrides now and after `change`, the latter checked.
    fn next_topic_configs(
        &self,
        name: &str,
        change: &ConfigChange,
    ) -> Result<(Configs, Configs), BrokerError> {
        let current = self.metadata().topics.get(name).map(|t| t.configs.clone());
        let Some(current) = current else {
            return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
        };
        let next = match change {
            ConfigChange::Replace(configs) => configs.clone(),
            ConfigChange::Incremental(ops) => {
                let mut next = current.clone();
                for op in ops {
                    self.apply_config_op(name, &mut next, op)?;
                }
                next
            }
        };
        self.check_topic_configs(&next)?;
        Ok((current, next))
    }

    fn apply_config_op(
        &self,
        name: &str,
        configs: &mut BTreeMap<String, String>,
        op: &ConfigOp,
    ) -> Result<(), BrokerError> {
        let (key, value, append) = match op {
            ConfigOp::Set { key, value } => {
                configs.insert(key.clone(), value.clone());
                return Ok(());
            }
            ConfigOp::Delete { key } => {
                configs.remove(key);
                return Ok(());
            }
            ConfigOp::Append { key, value } => (key, value, true),
            ConfigOp::Subtract { key, value } => (key, value, false),
        };
        if !LIST_CONFIGS.contains(&key.as_str()) {
            let verb = if append { "APPEND" } else { "SUBTRACT" };
            return Err(BrokerError::new(
                ErrorCode::InvalidConfig,
                format!("Can't {verb} to key {key} because its type is not LIST."),
            ));
        }
        let base = match configs.get(key) {
            Some(v) => v.clone(),
            None => self
                .describe_topic_configs(name)?
                .into_iter()
                .find(|e| e.name == *key)
                .map(|e| e.value)
                .unwrap_or_default(),
        };
        let mut list: Vec<&str> = base.split(',').filter(|v| !v.is_empty()).collect();
        for v in value.split(',').filter(|v| !v.is_empty()) {
            if append && !list.contains(&v) {
                list.push(v);
            } else if !append {
                list.retain(|have| *have != v);
            }
        }
        let joined = list.join(",");
        configs.insert(key.clone(), joined);
        Ok(())
    }
}
