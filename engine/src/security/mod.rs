//! Authentication and authorization: what the broker keeps of users'
//! passwords and how a client proves it knows one (`scram`, and `plain`
//! checking a password sent in the clear against the same credentials); Kafka's ACLs
//! and how a request is decided against them (`acl`); the credentials, ACLs and
//! quotas kept in the metadata, and their changes (`state`). Pure computation over what it is
//! handed; the server runs the exchanges on its connections.

pub mod acl;
pub mod plain;
pub mod scram;
pub mod state;
