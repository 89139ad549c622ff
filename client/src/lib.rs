//! Ringtail's own small Kafka client, for the admin and quick-start
//! commands and the load generator. It speaks the Kafka wire protocol
//! exactly as any other client would, through kafka-protocol's codecs.
//!
//! - `frame`: request and response frames, without I/O.
//! - `versions`: ApiVersions negotiation.
//! - `connection`: one pipelined TCP connection to one broker.
//! - `metadata`: the cluster as Metadata describes it.
//! - `cluster`: `Client`: connections per broker, leader routing, retries.
//! - `admin`, `produce`, `producer_id`, `fetch`, `offsets`, `group`,
//!   `scram_credentials`, `acls`, `quotas`: the operations on `Client`.
//! - `fetched`, `records`: fetched record batches, read in place.
//! - `security`: TLS and SASL/SCRAM settings for secured listeners.
//! - `assignor`: the consumer protocol's embedded formats and the range assignor.
//! - `consumer_group`: `GroupMember`, one member of a consumer group:
//!   join, sync, heartbeat in the background, commit, leave.
//! - `config`, `error`: settings and limits; errors with Kafka's names.
//!
//! Batches are built by the engine's record codec and read in place by its
//! decoder: `records` splits fetched bytes into whole batches, and a
//! compressed batch is first rewritten uncompressed (the engine's
//! `records::decompress`).

pub mod acls;
pub mod admin;
pub mod assignor;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer_group;
pub mod delete_records;
pub mod error;
pub mod fetch;
pub mod fetched;
pub mod frame;
pub mod group;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod quotas;
pub mod records;
pub mod scram_credentials;
pub mod security;
pub mod tcp;
pub mod versions;

pub use admin::{ConfigEntry, ConfigSource, NewTopic};
pub use cluster::Client;
pub use config::ClientConfig;
pub use connection::Connection;
pub use consumer_group::{GroupMember, MemberConfig};
pub use error::{kafka_error_name, ClientError};
pub use fetch::{ConsumedRecord, FetchOptions, FetchPosition, PartitionFetch};
pub use fetched::FetchedBatches;
pub use group::{CommittedOffsets, GroupDescription, ListedGroup, MemberDescription, Membership};
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub use offsets::OffsetSpec;
pub use produce::{build_batch, partition_for_key, Acks, ProduceAck, ProducerRecord};
pub use producer_id::ProducerIdentity;
