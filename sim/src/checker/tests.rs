use super::*;
use crate::values::make_value;
use ringtail_engine::log::records::BatchBuilder;

fn checker(flush_always: bool) -> (Checker, Arc<Mutex<Taints>>) {
    let taints = Arc::new(Mutex::new(Taints::default()));
    (Checker::new(flush_always, taints.clone(), false, Box::new(|| 0)), taints)
}

fn tp() -> Tp {
    ("t".to_string(), 0)
}

/// Registers `n` records of producer 1 from `seq` and returns them.
fn send(c: &mut Checker, seq: u64, n: u64) -> Vec<(RecordKey, Bytes)> {
    let records: Vec<(RecordKey, Bytes)> = (seq..seq + n)
        .map(|s| (RecordKey { producer: 1, seq: s }, make_value(RecordKey { producer: 1, seq: s }, 20)))
        .collect();
    c.produce_sent(&tp(), &records, -1, false);
    records
}

/// A batch holding `records` at offsets from `base`.
fn batch(base: u64, records: &[(RecordKey, Bytes)]) -> Bytes {
    let mut b = BatchBuilder::new(base as i64, 0);
    for (_, v) in records {
        b.push(None, Some(v.clone()), 0);
    }
    b.build()
}

fn keys(records: &[(RecordKey, Bytes)]) -> Vec<RecordKey> {
    records.iter().map(|(k, _)| *k).collect()
}

/// An acks=all record missing after recovery is a violation of 1; the
/// same loss in a tainted partition with damage reported is accepted.
#[test]
fn acked_record_lost_at_recovery() {
    let (mut c, taints) = checker(true);
    c.topic_planned("t", 1, false);
    let r = send(&mut c, 0, 3);
    c.produce_acked(&tp(), &keys(&r), -1, 0, 0, Epochs::at(0));
    let read = LogRead { log_start: 0, end: 2, batches: vec![batch(0, &r[..2])], error: None };
    c.recovered(&tp(), &read, false);
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::AckedNeverLost));

    let (mut c, _) = checker(true);
    taints.lock().unwrap().partitions.insert(tp());
    c.taints = taints;
    let r = send(&mut c, 0, 3);
    c.produce_acked(&tp(), &keys(&r), -1, 0, 0, Epochs::at(0));
    c.recovered(&tp(), &read, true);
    assert!(c.violation().is_none());
    assert_eq!(c.outcomes().lost_reported, 1);
}

/// Two values at one offset violate 2, unless the first never had to be
/// durable and unsynced data was lost since.
#[test]
fn one_value_per_offset() {
    let (mut c, taints) = checker(false);
    let a = send(&mut c, 0, 1);
    let b = send(&mut c, 1, 1);
    c.produce_acked(&tp(), &keys(&a), 1, 5, 0, Epochs::at(0));
    taints.lock().unwrap().losses += 1;
    c.produce_acked(&tp(), &keys(&b), 1, 5, 0, Epochs::at(1));
    assert!(c.violation().is_none(), "reuse after a loss is allowed under flush != always");
    let d = send(&mut c, 2, 1);
    c.produce_acked(&tp(), &keys(&d), 1, 5, 0, Epochs::at(1));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::OneValuePerOffset));
}

/// An answer whose request was in flight across a loss event may have been
/// produced on either side of it; two answers both after it may not differ.
#[test]
fn an_answer_in_flight_across_a_loss_gets_the_doubt() {
    let (mut c, taints) = checker(false);
    let a = send(&mut c, 0, 1);
    let b = send(&mut c, 1, 1);
    c.produce_acked(&tp(), &keys(&a), 1, 5, 0, Epochs { lo: 0, hi: 1 });
    taints.lock().unwrap().losses += 1;
    c.produce_acked(&tp(), &keys(&b), 1, 5, 0, Epochs::at(1));
    assert!(c.violation().is_none(), "the first answer may predate the loss");
    let d = send(&mut c, 2, 1);
    c.produce_acked(&tp(), &keys(&d), 1, 5, 0, Epochs::at(1));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::OneValuePerOffset));
}

/// Fetches must be dense, below the HW, of records a producer sent.
#[test]
fn fetch_checks() {
    let (mut c, _) = checker(true);
    let r = send(&mut c, 0, 3);
    c.fetched(0, &tp(), 0, &batch(0, &r), 3, 0, Epochs::at(0));
    assert!(c.violation().is_none());
    c.fetched(0, &tp(), 0, &batch(0, &r), 2, 0, Epochs::at(0));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::ReadStaysRead));

    let (mut c, _) = checker(true);
    let r = send(&mut c, 0, 2);
    let mut forged = r.clone();
    forged[1].1 = make_value(RecordKey { producer: 1, seq: 1 }, 21);
    c.fetched(0, &tp(), 0, &batch(0, &forged), 2, 0, Epochs::at(0));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::Recovery));
}

/// A reader's high watermark never goes back under flush=always.
#[test]
fn high_watermark_monotonic() {
    let (mut c, _) = checker(true);
    c.listed(0, &tp(), -1, 10);
    c.listed(1, &tp(), -1, 4);
    assert!(c.violation().is_none(), "readers are independent");
    c.listed(0, &tp(), -1, 9);
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::ReadStaysRead));
}

/// A second recovery that differs from the first violates 5.
#[test]
fn recovery_idempotent() {
    let (mut c, _) = checker(true);
    c.recovery_repeated(&tp(), (0, 5), (0, 5), false);
    assert!(c.violation().is_none());
    c.recovery_repeated(&tp(), (0, 5), (0, 5), true);
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::Recovery));
}

/// A topic deleted and then created again (by a late create) is a new log:
/// what readers saw of the old one does not bind it.
#[test]
fn a_recreated_topic_starts_empty() {
    let (mut c, _) = checker(true);
    c.topic_planned("t", 1, false);
    let r = send(&mut c, 0, 3);
    c.fetched(0, &tp(), 0, &batch(0, &r), 3, 0, Epochs::at(0));
    c.topic_deleted("t");
    c.topic_created_by_broker("t");
    let empty = LogRead { log_start: 0, end: 0, batches: Vec::new(), error: None };
    c.recovered(&tp(), &empty, false);
    assert!(c.violation().is_none(), "{:?}", c.violation());
    // Without the delete, the same recovery loses what was read.
    let (mut c, _) = checker(true);
    c.topic_planned("t", 1, false);
    let r = send(&mut c, 0, 3);
    c.fetched(0, &tp(), 0, &batch(0, &r), 3, 0, Epochs::at(0));
    c.recovered(&tp(), &empty, false);
    assert!(c.violation().is_some());
}

/// An idempotent producer's records appear once each (a retried batch
/// answered at two offsets is a violation of I), in sequence order within
/// one producer id, while a producer that is not idempotent may duplicate.
#[test]
fn idempotent_records_appear_once_in_order() {
    let (mut c, _) = checker(true);
    let a = send(&mut c, 0, 2);
    c.produce_acked(&tp(), &keys(&a), -1, 0, 0, Epochs::at(0));
    c.produce_acked(&tp(), &keys(&a), -1, 2, 0, Epochs::at(0));
    assert!(c.violation().is_none(), "producer 1 is not idempotent: duplicates are allowed");

    let (mut c, _) = checker(true);
    c.idempotent_identity(1, 0);
    let a = send(&mut c, 0, 2);
    c.produce_acked(&tp(), &keys(&a), -1, 0, 0, Epochs::at(0));
    c.produce_acked(&tp(), &keys(&a), -1, 0, 0, Epochs::at(0));
    assert!(c.violation().is_none(), "a retry answered with the same offsets");
    c.produce_acked(&tp(), &keys(&a), -1, 2, 0, Epochs::at(0));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::IdempotentOnce));

    let (mut c, _) = checker(true);
    c.idempotent_identity(1, 0);
    let a = send(&mut c, 0, 1);
    let b = send(&mut c, 1, 1);
    c.produce_acked(&tp(), &keys(&b), -1, 0, 0, Epochs::at(0));
    c.produce_acked(&tp(), &keys(&a), -1, 1, 0, Epochs::at(0));
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::IdempotentOnce), "out of order");

    // A new producer id: its records may follow an abandoned batch's.
    let (mut c, _) = checker(true);
    c.idempotent_identity(1, 0);
    let a = send(&mut c, 0, 1);
    c.idempotent_identity(1, 1);
    let b = send(&mut c, 1, 1);
    c.produce_acked(&tp(), &keys(&b), -1, 0, 0, Epochs::at(0));
    c.produce_acked(&tp(), &keys(&a), -1, 1, 0, Epochs::at(0));
    assert!(c.violation().is_none(), "{:?}", c.violation());
}

/// ListOffsets by time: nothing below the answer is at or after the time,
/// and the answer's record is.
#[test]
fn time_lookups_agree_with_the_model() {
    let (mut c, _) = checker(true);
    let a = send(&mut c, 0, 2);
    let b = send(&mut c, 2, 2);
    c.timestamped(keys(&a).into_iter(), 100);
    c.timestamped(keys(&b).into_iter(), 200);
    c.produce_acked(&tp(), &keys(&a), -1, 0, 0, Epochs::at(0));
    c.produce_acked(&tp(), &keys(&b), -1, 2, 0, Epochs::at(0));
    for (time, answer) in [(0, 0), (100, 0), (101, 2), (200, 2)] {
        c.listed(0, &tp(), time, answer);
        assert!(c.violation().is_none(), "time {time} answered {answer}: {:?}", c.violation());
    }
    c.listed(0, &tp(), 150, 0);
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::TimeLookup), "too early");

    let (mut c, _) = checker(true);
    let a = send(&mut c, 0, 2);
    c.timestamped(keys(&a).into_iter(), 100);
    c.produce_acked(&tp(), &keys(&a), -1, 0, 0, Epochs::at(0));
    c.listed(0, &tp(), 50, 1);
    assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::TimeLookup), "too late");
}
