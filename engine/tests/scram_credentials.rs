//! Users' SCRAM credentials through the Broker, on MemDisk: set, deleted
//! and described as Kafka's AlterUserScramCredentials and
//! DescribeUserScramCredentials do, refused with Kafka's codes and
//! messages, durable before they are acknowledged, and usable by the
//! SCRAM exchange.

mod common;

use common::runtime;
use ringtail_engine::broker::credentials::{ScramDeletion, ScramUpsertion};
use ringtail_engine::broker::{Broker, BrokerError, ErrorCode};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::security::scram::{
    ScramCredential, ScramError, ScramMechanism, ITERATIONS_MAX, ITERATIONS_MIN,
};
use std::sync::Arc;

const SHA256: i8 = 1;
const SHA512: i8 = 2;

async fn open(disk: &Arc<MemDisk>) -> Broker<MemDisk> {
    common::open_broker(disk, false).await
}

/// An upsertion as a client makes it: the password salted client-side.
fn upsert(user: &str, mechanism: i8, iterations: i32, password: &str) -> ScramUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted_password = ScramMechanism::from_code(mechanism)
        .map(|m| m.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32))
        .unwrap_or_else(|| vec![0; 32]);
    ScramUpsertion { user: user.into(), mechanism, iterations, salt, salted_password }
}

fn delete(user: &str, mechanism: i8) -> ScramDeletion {
    ScramDeletion { user: user.into(), mechanism }
}

/// Whether a client knowing `password` would get in as `user`: the
/// credential the broker keeps is the one that password makes with the
/// stored salt and count. (The exchange itself is `security::scram`'s,
/// tested there and against a running server.)
fn log_in(broker: &Broker<MemDisk>, m: ScramMechanism, user: &str, password: &str) -> Result<(), ScramError> {
    let stored = broker.scram_credential(user, m).ok_or(ScramError::InvalidCredentials)?;
    let derived = ScramCredential::from_password(m, password.as_bytes(), &stored.salt, stored.iterations);
    if derived != stored {
        return Err(ScramError::InvalidCredentials);
    }
    Ok(())
}

fn codes(results: &[(String, Result<(), BrokerError>)]) -> Vec<(&str, ErrorCode)> {
    results.iter().map(|(u, r)| (u.as_str(), r.as_ref().err().map_or(ErrorCode::None, |e| e.code))).collect()
}

/// Credentials set for two users and mechanisms are described (all users,
/// sorted, or the ones named), let their users in with the right password
/// only, are replaced by a new upsertion, and deleted one mechanism at a
/// time until the user is gone.
#[test]
fn credentials_are_set_described_used_and_deleted() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        assert!(broker.describe_scram_credentials(None).is_empty());
        let results = broker
            .alter_scram_credentials(
                &[],
                &[
                    upsert("bob", SHA512, 8192, "b"),
                    upsert("alice", SHA256, 4096, "a1"),
                    upsert("alice", SHA512, 4096, "a2"),
                ],
            )
            .await;
        assert_eq!(codes(&results), [("alice", ErrorCode::None), ("bob", ErrorCode::None)]);

        let all = broker.describe_scram_credentials(None);
        let described: Vec<_> = all.iter().map(|(u, r)| (u.as_str(), r.clone().unwrap())).collect();
        assert_eq!(
            described,
            [
                ("alice", vec![(ScramMechanism::Sha256, 4096), (ScramMechanism::Sha512, 4096)]),
                ("bob", vec![(ScramMechanism::Sha512, 8192)]),
            ]
        );
        let named = broker.describe_scram_credentials(Some(&["bob".to_string()]));
        assert_eq!(named, [("bob".to_string(), Ok(vec![(ScramMechanism::Sha512, 8192)]))]);

        assert_eq!(log_in(&broker, ScramMechanism::Sha256, "alice", "a1"), Ok(()));
        assert_eq!(log_in(&broker, ScramMechanism::Sha512, "alice", "a2"), Ok(()));
        assert_eq!(
            log_in(&broker, ScramMechanism::Sha256, "alice", "a2"),
            Err(ScramError::InvalidCredentials)
        );
        assert_eq!(log_in(&broker, ScramMechanism::Sha256, "bob", "b"), Err(ScramError::InvalidCredentials));

        // A new upsertion replaces the old credential.
        broker.alter_scram_credentials(&[], &[upsert("alice", SHA256, 5000, "new")]).await;
        assert_eq!(log_in(&broker, ScramMechanism::Sha256, "alice", "new"), Ok(()));
        assert_eq!(
            log_in(&broker, ScramMechanism::Sha256, "alice", "a1"),
            Err(ScramError::InvalidCredentials)
        );

        let results = broker.alter_scram_credentials(&[delete("alice", SHA256)], &[]).await;
        assert_eq!(codes(&results), [("alice", ErrorCode::None)]);
        assert!(broker.scram_credential("alice", ScramMechanism::Sha256).is_none());
        assert_eq!(log_in(&broker, ScramMechanism::Sha512, "alice", "a2"), Ok(()));
        broker.alter_scram_credentials(&[delete("alice", SHA512)], &[]).await;
        let gone = broker.describe_scram_credentials(Some(&["alice".to_string()]));
        let e = gone[0].1.clone().unwrap_err();
        assert_eq!(e.code, ErrorCode::ResourceNotFound);
        assert_eq!(e.message, "Attempt to describe a user credential that does not exist: alice");
        assert_eq!(broker.describe_scram_credentials(None).len(), 1, "only bob is left");
    })
}

/// Kafka's refusals, each with its code and message; a user with one bad
/// alteration has none applied, while other users in the same request
/// are.
#[test]
fn bad_alterations_are_refused_as_kafka_refuses_them() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        let refused = |results: &[(String, Result<(), BrokerError>)], user: &str| {
            results.iter().find(|(u, _)| u == user).and_then(|(_, r)| r.clone().err()).unwrap()
        };
        let results = broker
            .alter_scram_credentials(
                &[delete("nobody", SHA256), delete("mech", 0)],
                &[
                    upsert("", SHA256, 4096, "p"),
                    upsert("few", SHA256, ITERATIONS_MIN as i32 - 1, "p"),
                    upsert("many", SHA512, ITERATIONS_MAX as i32 + 1, "p"),
                    upsert("unknown", 3, 4096, "p"),
                    upsert("twice", SHA256, 4096, "p"),
                    upsert("twice", SHA256, 4096, "q"),
                    upsert("fine", SHA256, ITERATIONS_MAX as i32, "p"),
                ],
            )
            .await;
        let expect = [
            ("", ErrorCode::UnacceptableCredential, "Username must not be empty"),
            ("few", ErrorCode::UnacceptableCredential, "Too few iterations"),
            ("many", ErrorCode::UnacceptableCredential, "Too many iterations"),
            ("unknown", ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"),
            ("mech", ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"),
            (
                "twice",
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ),
            (
                "nobody",
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            ),
        ];
        for (user, code, message) in expect {
            let e = refused(&results, user);
            assert_eq!((e.code, e.message.as_str()), (code, message), "{user}");
        }
        assert_eq!(results.len(), expect.len() + 1, "one result per user");
        let described = broker.describe_scram_credentials(None);
        let users: Vec<&str> = described.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["fine"], "only the valid user's credential was set");

        // Upserting and deleting the same user and mechanism is a
        // duplicate; the user's other, valid, alteration is not applied.
        let results = broker
            .alter_scram_credentials(
                &[delete("fine", SHA256)],
                &[upsert("fine", SHA256, 4096, "x"), upsert("fine", SHA512, 4096, "y")],
            )
            .await;
        assert_eq!(codes(&results), [("fine", ErrorCode::DuplicateResource)]);
        assert!(broker.scram_credential("fine", ScramMechanism::Sha512).is_none());
        assert_eq!(
            broker.scram_credential("fine", ScramMechanism::Sha256).unwrap().iterations,
            ITERATIONS_MAX
        );

        // Describing a user twice, or one that does not exist.
        let named = ["fine".to_string(), "ghost".to_string(), "fine".to_string()];
        let described = broker.describe_scram_credentials(Some(&named));
        let outcome: Vec<_> =
            described.iter().map(|(u, r)| (u.as_str(), r.as_ref().unwrap_err().code)).collect();
        assert_eq!(outcome, [("fine", ErrorCode::DuplicateResource), ("ghost", ErrorCode::ResourceNotFound)]);
        assert_eq!(
            described[0].1.as_ref().unwrap_err().message,
            "Cannot describe SCRAM credentials for the same user twice in a single request: fine"
        );
    })
}

/// Acknowledged credentials survive a restart and a crash; a change whose
/// journal record never became durable (its fsync failed) is refused and
/// lost in the crash, and only it.
#[test]
fn acknowledged_credentials_survive_restarts_and_crashes_and_only_they() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        broker.alter_scram_credentials(&[], &[upsert("alice", SHA512, 4096, "pw")]).await;
        broker.close().await.unwrap();
        drop(broker);

        let broker = open(&disk).await;
        assert_eq!(log_in(&broker, ScramMechanism::Sha512, "alice", "pw"), Ok(()));
        broker.alter_scram_credentials(&[], &[upsert("bob", SHA256, 4096, "pw")]).await;
        disk.fail_next_syncs(1);
        let results = broker
            .alter_scram_credentials(&[delete("alice", SHA512)], &[upsert("carol", SHA256, 4096, "pw")])
            .await;
        assert_eq!(
            codes(&results),
            [("alice", ErrorCode::KafkaStorageError), ("carol", ErrorCode::KafkaStorageError)],
            "an unsynced change is not acknowledged"
        );
        disk.crash(CrashMode::DropUnsynced);
        drop(broker);

        let broker = open(&disk).await;
        assert_eq!(log_in(&broker, ScramMechanism::Sha512, "alice", "pw"), Ok(()), "the deletion was lost");
        assert_eq!(log_in(&broker, ScramMechanism::Sha256, "bob", "pw"), Ok(()), "bob was acknowledged");
        assert!(broker.scram_credential("carol", ScramMechanism::Sha256).is_none());
        // And the journal goes on after the failure (a new snapshot, J4).
        broker.alter_scram_credentials(&[], &[upsert("dave", SHA256, 4096, "pw")]).await;
        disk.crash(CrashMode::DropUnsynced);
        drop(broker);
        let broker = open(&disk).await;
        let users: Vec<String> =
            broker.describe_scram_credentials(None).into_iter().map(|(u, _)| u).collect();
        assert_eq!(users, ["alice", "bob", "dave"]);
    })
}
