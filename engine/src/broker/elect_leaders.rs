//! Leader elections an operator asks for (Kafka's ElectLeaders). In a
//! cluster the controller decides them (`controller::plan::elect_leaders`);
//! a single node leads every partition it has, so none is ever needed.

use super::Broker;
use crate::controller::plan::{ElectionType, PartitionElection, Wanted};
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;

impl<D: Disk> Broker<D> {
    /// Elects leaders of `wanted` (every partition if `None`): each
    /// partition's outcome, in the order asked. Returns once any new
    /// leader is in this broker's metadata.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        wanted: Wanted,
    ) -> Result<Vec<PartitionElection>, BrokerError> {
        if self.config.quorum {
            return self.link()?.elect_leaders(election, wanted).await;
        }
        let metadata = self.metadata();
        let Some(topics) = wanted else {
            // Kafka leaves out the partitions that need no election.
            return Ok(Vec::new());
        };
        let mut outcomes = Vec::new();
        for (name, partitions) in &topics {
            let count = metadata.topics.get(name).map(|t| t.partitions.len());
            for &partition in partitions {
                let known = count.is_some_and(|n| usize::try_from(partition).is_ok_and(|p| p < n));
                outcomes.push(if known {
                    let why = format!("broker {} leads it already (a single node)", self.config.node_id);
                    PartitionElection::new(name, partition, ErrorCode::ElectionNotNeeded, Some(why))
                } else {
                    let why = format!("no partition {partition} of topic {name}");
                    PartitionElection::new(name, partition, ErrorCode::UnknownTopicOrPartition, Some(why))
                });
            }
        }
        Ok(outcomes)
    }
}
