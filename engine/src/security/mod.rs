//! Authentication: what the broker keeps of users' passwords and how a
//! client proves it knows one (SCRAM). Pure computation over what it is
//! handed; the server runs the exchanges on its connections.

pub mod scram;
