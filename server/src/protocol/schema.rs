//! The shape of each implemented request body, as far as the bounds walk
//! needs it: field types and the versions each field exists in. Written
//! from kafka-protocol 0.18's generated decoders (which follow Kafka's JSON
//! message schemas); a test encodes every implemented version with
//! kafka-protocol and checks that the walk consumes exactly what was
//! written, so a mistake here fails the build's tests rather than a client.
//!
//! Whether a version is "flexible" (compact strings and arrays, tagged
//! fields) is not listed: a request is flexible exactly when its header is
//! version 2, which kafka-protocol tells.

use kafka_protocol::messages::ApiKey;

/// A field's wire type.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Int8,
    Int16,
    Int32,
    Int64,
    Float64,
    Uuid,
    Bool,
    /// A string or nullable string.
    Str,
    /// Bytes or nullable bytes (record batches).
    Bytes,
    /// An array (or nullable array) of structs.
    Structs(&'static [Field]),
    /// An array (or nullable array) of a primitive.
    Array(&'static Ty),
}

/// A field present in versions `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub ty: Ty,
    pub min: i16,
    pub max: i16,
}

const LAST: i16 = i16::MAX;

const fn all(ty: Ty) -> Field {
    Field { ty, min: 0, max: LAST }
}

const fn from(min: i16, ty: Ty) -> Field {
    Field { ty, min, max: LAST }
}

const fn between(min: i16, max: i16, ty: Ty) -> Field {
    Field { ty, min, max }
}

use Ty::*;

const METADATA: &[Field] = &[
    all(Structs(&[from(10, Uuid), all(Str)])),
    from(4, Bool),        // allow_auto_topic_creation
    between(8, 10, Bool), // include_cluster_authorized_operations
    from(8, Bool),        // include_topic_authorized_operations
];

const PRODUCE: &[Field] = &[
    all(Str),   // transactional_id
    all(Int16), // acks
    all(Int32), // timeout_ms
    all(Structs(&[
        between(0, 12, Str), // name
        from(13, Uuid),      // topic_id
        all(Structs(&[all(Int32), all(Bytes)])),
    ])),
];

const FETCH: &[Field] = &[
    between(0, 14, Int32), // replica_id
    all(Int32),            // max_wait_ms
    all(Int32),            // min_bytes
    from(3, Int32),        // max_bytes
    from(4, Int8),         // isolation_level
    from(7, Int32),        // session_id
    from(7, Int32),        // session_epoch
    all(Structs(&[
        between(0, 12, Str), // topic
        from(13, Uuid),      // topic_id
        all(Structs(&[
            all(Int32),      // partition
            from(9, Int32),  // current_leader_epoch
            all(Int64),      // fetch_offset
            from(12, Int32), // last_fetched_epoch
            from(5, Int64),  // log_start_offset
            all(Int32),      // partition_max_bytes
        ])),
    ])),
    from(7, Structs(&[between(7, 12, Str), from(13, Uuid), from(7, Array(&Int32))])), // forgotten topics
    from(11, Str),                                                                    // rack_id
];

const LIST_OFFSETS: &[Field] = &[
    all(Int32),    // replica_id
    from(2, Int8), // isolation_level
    all(Structs(&[
        all(Str),
        all(Structs(&[all(Int32), from(4, Int32), all(Int64)])), // index, leader epoch, timestamp
    ])),
    from(10, Int32), // timeout_ms
];

const CREATE_TOPICS: &[Field] = &[
    all(Structs(&[
        all(Str),                                        // name
        all(Int32),                                      // num_partitions
        all(Int16),                                      // replication_factor
        all(Structs(&[all(Int32), all(Array(&Int32))])), // assignments
        all(Structs(&[all(Str), all(Str)])),             // configs
    ])),
    all(Int32),    // timeout_ms
    from(1, Bool), // validate_only
];

const DELETE_TOPICS: &[Field] = &[
    from(6, Structs(&[all(Str), all(Uuid)])), // topics
    between(0, 5, Array(&Str)),               // topic_names
    all(Int32),                               // timeout_ms
];

const DELETE_RECORDS: &[Field] = &[
    all(Structs(&[
        all(Str),                                // name
        all(Structs(&[all(Int32), all(Int64)])), // partitions: index, offset
    ])),
    all(Int32), // timeout_ms
];

const DESCRIBE_CONFIGS: &[Field] = &[
    all(Structs(&[all(Int8), all(Str), all(Array(&Str))])),
    from(1, Bool), // include_synonyms
    from(3, Bool), // include_documentation
];

const ALTER_CONFIGS: &[Field] = &[
    all(Structs(&[
        all(Int8),                           // resource_type
        all(Str),                            // resource_name
        all(Structs(&[all(Str), all(Str)])), // configs: name, value
    ])),
    all(Bool), // validate_only
];

const CREATE_PARTITIONS: &[Field] = &[
    all(Structs(&[
        all(Str),                            // name
        all(Int32),                          // count
        all(Structs(&[all(Array(&Int32))])), // assignments (null: the controller places)
    ])),
    all(Int32), // timeout_ms
    all(Bool),  // validate_only
];

const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    all(Structs(&[
        all(Int8),                                      // resource_type
        all(Str),                                       // resource_name
        all(Structs(&[all(Str), all(Int8), all(Str)])), // configs: name, operation, value
    ])),
    all(Bool), // validate_only
];

const INIT_PRODUCER_ID: &[Field] = &[
    all(Str),       // transactional_id
    all(Int32),     // transaction_timeout_ms
    from(3, Int64), // producer_id
    from(3, Int16), // producer_epoch
];

const OFFSET_FOR_LEADER_EPOCH: &[Field] = &[
    from(3, Int32), // replica_id
    all(Structs(&[all(Str), all(Structs(&[all(Int32), from(2, Int32), all(Int32)]))])),
];

const FIND_COORDINATOR: &[Field] = &[
    between(0, 3, Str),   // key
    from(1, Int8),        // key_type
    from(4, Array(&Str)), // coordinator_keys
];

const JOIN_GROUP: &[Field] = &[
    all(Str),                              // group_id
    all(Int32),                            // session_timeout_ms
    from(1, Int32),                        // rebalance_timeout_ms
    all(Str),                              // member_id
    from(5, Str),                          // group_instance_id
    all(Str),                              // protocol_type
    all(Structs(&[all(Str), all(Bytes)])), // protocols: name, metadata
    from(8, Str),                          // reason
];

const SYNC_GROUP: &[Field] = &[
    all(Str),                              // group_id
    all(Int32),                            // generation_id
    all(Str),                              // member_id
    from(3, Str),                          // group_instance_id
    from(5, Str),                          // protocol_type
    from(5, Str),                          // protocol_name
    all(Structs(&[all(Str), all(Bytes)])), // assignments: member_id, assignment
];

const HEARTBEAT: &[Field] = &[
    all(Str),     // group_id
    all(Int32),   // generation_id
    all(Str),     // member_id
    from(3, Str), // group_instance_id
];

const LEAVE_GROUP: &[Field] = &[
    all(Str),                                              // group_id
    between(0, 2, Str),                                    // member_id
    from(3, Structs(&[all(Str), all(Str), from(5, Str)])), // members: id, instance id, reason
];

const OFFSET_COMMIT: &[Field] = &[
    all(Str),             // group_id
    all(Int32),           // generation_id_or_member_epoch
    all(Str),             // member_id
    from(7, Str),         // group_instance_id
    between(2, 4, Int64), // retention_time_ms
    all(Structs(&[
        all(Str), // name
        all(Structs(&[
            all(Int32),     // partition_index
            all(Int64),     // committed_offset
            from(6, Int32), // committed_leader_epoch
            all(Str),       // committed_metadata
        ])),
    ])),
];

const OFFSET_FETCH: &[Field] = &[
    between(0, 7, Str),                                      // group_id
    between(0, 7, Structs(&[all(Str), all(Array(&Int32))])), // topics (null: all)
    from(
        8,
        Structs(&[
            all(Str),                                      // group_id
            from(9, Str),                                  // member_id
            from(9, Int32),                                // member_epoch
            all(Structs(&[all(Str), all(Array(&Int32))])), // topics (null: all)
        ]),
    ),
    from(7, Bool), // require_stable
];

const DESCRIBE_GROUPS: &[Field] = &[
    all(Array(&Str)), // groups
    from(3, Bool),    // include_authorized_operations
];

const LIST_GROUPS: &[Field] = &[
    from(4, Array(&Str)), // states_filter
    from(5, Array(&Str)), // types_filter
];

const DELETE_GROUPS: &[Field] = &[
    all(Array(&Str)), // groups_names
];

const ELECT_LEADERS: &[Field] = &[
    from(1, Int8),                                 // election_type
    all(Structs(&[all(Str), all(Array(&Int32))])), // topic_partitions (null: all): topic, partitions
    all(Int32),                                    // timeout_ms
];

const DESCRIBE_CLUSTER: &[Field] = &[
    all(Bool),     // include_cluster_authorized_operations
    from(1, Int8), // endpoint_type
    from(2, Bool), // include_fenced_brokers
];

const DESCRIBE_LOG_DIRS: &[Field] = &[
    all(Structs(&[all(Str), all(Array(&Int32))])), // topics: topic, partitions
];

const DESCRIBE_PRODUCERS: &[Field] = &[
    all(Structs(&[all(Str), all(Array(&Int32))])), // topics: name, partition_indexes
];

const OFFSET_DELETE: &[Field] = &[
    all(Str),                                               // group_id
    all(Structs(&[all(Str), all(Structs(&[all(Int32)]))])), // topics: name, partitions
];

const DESCRIBE_USER_SCRAM_CREDENTIALS: &[Field] = &[
    all(Structs(&[all(Str)])), // users (null: all): name
];

const ALTER_USER_SCRAM_CREDENTIALS: &[Field] = &[
    all(Structs(&[all(Str), all(Int8)])), // deletions: name, mechanism
    // upsertions: name, mechanism, iterations, salt, salted_password
    all(Structs(&[all(Str), all(Int8), all(Int32), all(Bytes), all(Bytes)])),
];

/// An ACL binding, or a filter of them: resource type, name, pattern
/// type, principal, host, operation, permission type.
const ACL: &[Field] = &[all(Int8), all(Str), all(Int8), all(Str), all(Str), all(Int8), all(Int8)];

const CREATE_ACLS: &[Field] = &[all(Structs(ACL))]; // creations

const DESCRIBE_ACLS: &[Field] = ACL; // one filter

const DELETE_ACLS: &[Field] = &[all(Structs(ACL))]; // filters

const DESCRIBE_CLIENT_QUOTAS: &[Field] = &[
    all(Structs(&[all(Str), all(Int8), all(Str)])), // components: entity_type, match_type, match
    all(Bool),                                      // strict
];

const ALTER_CLIENT_QUOTAS: &[Field] = &[
    // entries: entity (entity_type, entity_name), ops (key, value, remove)
    all(Structs(&[all(Structs(&[all(Str), all(Str)])), all(Structs(&[all(Str), all(Float64), all(Bool)]))])),
    all(Bool), // validate_only
];

const SASL_HANDSHAKE: &[Field] = &[all(Str)]; // mechanism

const SASL_AUTHENTICATE: &[Field] = &[all(Bytes)]; // auth_bytes

const API_VERSIONS: &[Field] = &[
    from(3, Str), // client_software_name
    from(3, Str), // client_software_version
];

/// The body fields of `key`'s request, for the implemented APIs.
pub fn request_fields(key: ApiKey) -> Option<&'static [Field]> {
    Some(match key {
        ApiKey::Metadata => METADATA,
        ApiKey::Produce => PRODUCE,
        ApiKey::Fetch => FETCH,
        ApiKey::ListOffsets => LIST_OFFSETS,
        ApiKey::CreateTopics => CREATE_TOPICS,
        ApiKey::DeleteTopics => DELETE_TOPICS,
        ApiKey::DeleteRecords => DELETE_RECORDS,
        ApiKey::DescribeConfigs => DESCRIBE_CONFIGS,
        ApiKey::AlterConfigs => ALTER_CONFIGS,
        ApiKey::CreatePartitions => CREATE_PARTITIONS,
        ApiKey::IncrementalAlterConfigs => INCREMENTAL_ALTER_CONFIGS,
        ApiKey::InitProducerId => INIT_PRODUCER_ID,
        ApiKey::OffsetForLeaderEpoch => OFFSET_FOR_LEADER_EPOCH,
        ApiKey::ApiVersions => API_VERSIONS,
        ApiKey::SaslHandshake => SASL_HANDSHAKE,
        ApiKey::SaslAuthenticate => SASL_AUTHENTICATE,
        ApiKey::FindCoordinator => FIND_COORDINATOR,
        ApiKey::JoinGroup => JOIN_GROUP,
        ApiKey::SyncGroup => SYNC_GROUP,
        ApiKey::Heartbeat => HEARTBEAT,
        ApiKey::LeaveGroup => LEAVE_GROUP,
        ApiKey::OffsetCommit => OFFSET_COMMIT,
        ApiKey::OffsetFetch => OFFSET_FETCH,
        ApiKey::DescribeGroups => DESCRIBE_GROUPS,
        ApiKey::ListGroups => LIST_GROUPS,
        ApiKey::DeleteGroups => DELETE_GROUPS,
        ApiKey::ElectLeaders => ELECT_LEADERS,
        ApiKey::DescribeCluster => DESCRIBE_CLUSTER,
        ApiKey::DescribeLogDirs => DESCRIBE_LOG_DIRS,
        ApiKey::DescribeProducers => DESCRIBE_PRODUCERS,
        ApiKey::OffsetDelete => OFFSET_DELETE,
        ApiKey::DescribeUserScramCredentials => DESCRIBE_USER_SCRAM_CREDENTIALS,
        ApiKey::AlterUserScramCredentials => ALTER_USER_SCRAM_CREDENTIALS,
        ApiKey::CreateAcls => CREATE_ACLS,
        ApiKey::DescribeAcls => DESCRIBE_ACLS,
        ApiKey::DeleteAcls => DELETE_ACLS,
        ApiKey::DescribeClientQuotas => DESCRIBE_CLIENT_QUOTAS,
        ApiKey::AlterClientQuotas => ALTER_CLIENT_QUOTAS,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
