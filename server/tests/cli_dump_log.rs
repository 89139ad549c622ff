//! `ringtail dump-log`: segment files written by a real server (plain and
//! compressed batches, records with headers, indexes), dumped by the binary
//! as text and JSON; then copies with a flipped byte, a torn tail, a broken
//! offset sequence, padding and broken indexes, each reported where it is,
//! with exit code 1; unreadable files and bad names with exit code 2.

mod server_support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
use serde_json::Value;
use server_support::{compressed_batch, data_dir, record, start, Client};
use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
const SEGMENT: &str = "00000000000000000000";

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// Runs `ringtail dump-log ARGS`: (exit code, stdout, stderr).
fn dump(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY).arg("dump-log").args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

/// `dump(--json ARGS)`, each line parsed; panics on a line that is not JSON.
fn dump_json(args: &[&str]) -> (i32, Vec<Value>) {
    let (code, stdout, stderr) = dump(&[&["--json"], args].concat());
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{stderr}")))
        .collect();
    (code, lines)
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn field(lines: &[&Value], name: &str) -> Vec<Value> {
    lines.iter().map(|l| l[name].clone()).collect()
}

/// Three records whose second has two headers, one batch.
fn batch_with_headers() -> Bytes {
    let mut records: Vec<_> = (0..3).map(|i| record(i, &format!("k{i}"), &format!("plain-{i}"))).collect();
    records[1].headers.insert(s("trace"), Some(Bytes::from_static(b"t1")));
    records[1].headers.insert(s("empty"), None);
    records[2].key = None;
    records[2].value = Some(Bytes::from_static(b"\xffbinary\n"));
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// A data directory with topic "dump", one partition, holding (from offset
/// 0) a plain batch of 3 records, a gzip batch of 4 and a zstd batch of 2,
/// written by a server that then shut down cleanly (so its indexes are
/// written and the log has no padding). An index entry per batch after the
/// first.
fn written_segment() -> (tempfile::TempDir, PathBuf) {
    let dir = data_dir("dump-log");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = start(dir.path()).await;
        let mut client = Client::connect(server.kafka_addr).await;
        let topic = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("dump")))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("index.interval.bytes"))
                .with_value(Some(s("1")))]);
        let response = client.call(7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
        assert_eq!(response.topics[0].error_code, 0);
        for records in [
            batch_with_headers(),
            compressed_batch(4, Compression::Gzip),
            compressed_batch(2, Compression::Zstd),
        ] {
            let request =
                ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
                    produce_request::TopicProduceData::default()
                        .with_name(TopicName(s("dump")))
                        .with_partition_data(vec![produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records))]),
                ]);
            let response = client.call(9, &request).await;
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        }
        drop(client);
        server.shutdown().await.unwrap();
    });
    let partition = dir.path().join("dump-0");
    (dir, partition)
}

fn path(dir: &Path, suffix: &str) -> String {
    dir.join(format!("{SEGMENT}{suffix}")).to_str().unwrap().to_owned()
}

/// A copy of the segment's files in a directory of its own, to damage.
fn copy_segment(from: &Path, name: &str) -> tempfile::TempDir {
    let copy = data_dir(name);
    for suffix in [".log", ".index", ".timeindex"] {
        std::fs::copy(path(from, suffix), path(copy.path(), suffix)).unwrap();
    }
    copy
}

#[test]
fn segments_indexes_and_damage() {
    let (_data, dir) = written_segment();
    let log = path(&dir, ".log");

    // The whole log, as JSON, records included.
    let (code, lines) = dump_json(&[&log, "--records"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines[0]["type"], "file");
    assert_eq!(lines[0]["base_offset"], 0);
    let batches = of_type(&lines, "batch");
    assert_eq!(field(&batches, "base_offset"), [0, 3, 7]);
    assert_eq!(field(&batches, "last_offset"), [2, 6, 8]);
    assert_eq!(field(&batches, "count"), [3, 4, 2]);
    assert_eq!(field(&batches, "compression"), ["none", "gzip", "zstd"]);
    assert_eq!(field(&batches, "crc_valid"), [true, true, true]);
    assert_eq!(field(&batches, "magic"), [2, 2, 2]);
    assert_eq!(field(&batches, "producer_id"), [-1, -1, -1]);
    assert_eq!(field(&batches, "timestamp_type"), ["CreateTime", "CreateTime", "CreateTime"]);
    assert_eq!(batches[0]["first_timestamp"], 1_700_000_000_000i64);
    assert_eq!(batches[0]["max_timestamp"], 1_700_000_000_002i64);
    assert_eq!(batches[0]["position"], 0);
    let positions: Vec<u64> = field(&batches, "position").iter().map(|p| p.as_u64().unwrap()).collect();
    let sizes: Vec<u64> = field(&batches, "size").iter().map(|p| p.as_u64().unwrap()).collect();
    assert_eq!(positions[1], sizes[0]);
    assert_eq!(positions[2], sizes[0] + sizes[1]);
    let file_bytes = std::fs::metadata(&log).unwrap().len();
    assert_eq!(positions[2] + sizes[2], file_bytes);
    let records = of_type(&lines, "record");
    assert_eq!(field(&records, "offset"), (0..9).collect::<Vec<_>>());
    assert_eq!(records[0]["key"], "k0");
    assert_eq!(records[0]["value"], "plain-0");
    assert_eq!(records[0]["value_size"], 7);
    assert_eq!(records[1]["header_count"], 2);
    assert_eq!(records[1]["header_keys"], serde_json::json!(["trace", "empty"]));
    assert_eq!(records[2]["key"], Value::Null);
    assert_eq!(records[2]["key_size"], -1);
    assert_eq!(records[2]["value"], "\u{fffd}binary\n");
    assert_eq!(records[2]["value_size"], 8);
    // Decompressed: gzip's and zstd's records.
    assert_eq!(field(&records[3..], "value"), ["v"; 6]);
    assert_eq!(records[8]["timestamp"], 1_700_000_000_001i64);
    let summary = of_type(&lines, "summary");
    assert_eq!(summary[0]["batches"], 3);
    assert_eq!(summary[0]["records"], 9);
    assert_eq!(summary[0]["damage"], 0);
    assert_eq!(lines.last().unwrap()["type"], "summary");

    // From an offset inside the second batch: that batch on, and its
    // records from that offset.
    let (code, lines) = dump_json(&[&log, "--records", "--from-offset", "5"]);
    assert_eq!(code, 0);
    assert_eq!(field(&of_type(&lines, "batch"), "base_offset"), [3, 7]);
    assert_eq!(field(&of_type(&lines, "record"), "offset"), [5, 6, 7, 8]);

    // Text: one line a batch, a "|" line a record, a closing verdict.
    let (code, text, _) = dump(&[&log, "--records"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with(&format!("Dumping {log} (log, {file_bytes} bytes)\n")), "{text}");
    let batch_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("baseOffset: ")).collect();
    assert_eq!(batch_lines.len(), 3, "{text}");
    assert!(batch_lines[0].starts_with("baseOffset: 0 lastOffset: 2 count: 3 position: 0 size: "), "{text}");
    assert!(batch_lines[1].contains(" crcValid: true ") && batch_lines[1].contains(" compression: gzip "));
    assert!(batch_lines[2].contains(" isTransactional: false isControl: false timestampType: CreateTime "));
    assert!(text.contains("| offset: 1 timestamp: 1700000000001 keySize: 2 key: \"k1\" valueSize: 7 value: \"plain-1\" headers: 2\n"), "{text}");
    // Binary values are escaped, not written raw.
    assert!(text.contains("key: null valueSize: 8 value: \"\u{fffd}binary\\n\""), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("| offset: ")).count(), 9);
    assert!(
        text.trim_end().ends_with(&format!(
            "end: 3 batches, 9 records in {file_bytes} of {file_bytes} bytes; no damage"
        )),
        "{text}"
    );
    // Without --records, no record lines.
    let (_, text, _) = dump(&[&log]);
    assert!(!text.contains("| offset"), "{text}");

    // The offset index: an entry for each batch after the first, pointing
    // at it; the time index: each batch's max timestamp.
    let (code, lines) = dump_json(&[&path(&dir, ".index")]);
    assert_eq!(code, 0, "{lines:?}");
    let entries = of_type(&lines, "offset_index_entry");
    assert_eq!(field(&entries, "offset"), [3, 7]);
    assert_eq!(field(&entries, "position"), [positions[1], positions[2]]);
    let (code, text, _) = dump(&[&path(&dir, ".index")]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("offset: 7 position: {}\n", positions[2])), "{text}");
    let (code, lines) = dump_json(&[&path(&dir, ".timeindex")]);
    assert_eq!(code, 0, "{lines:?}");
    let times = of_type(&lines, "time_index_entry");
    assert_eq!(field(&times, "offset"), [3]);
    assert_eq!(field(&times, "timestamp"), [1_700_000_000_003i64]);

    let original = std::fs::read(&log).unwrap();

    // A flipped byte under the second batch's CRC: reported, and the dump
    // goes on to the third batch.
    let copy = copy_segment(&dir, "dump-flip");
    let mut bytes = original.clone();
    bytes[positions[1] as usize + 70] ^= 0x20;
    std::fs::write(path(copy.path(), ".log"), &bytes).unwrap();
    let (code, lines) = dump_json(&[&path(copy.path(), ".log"), "--records"]);
    assert_eq!(code, 1, "{lines:?}");
    let batches = of_type(&lines, "batch");
    assert_eq!(field(&batches, "crc_valid"), [true, false, true]);
    assert_ne!(batches[1]["crc"], batches[1]["crc_computed"]);
    let damage = of_type(&lines, "damage");
    assert_eq!(damage.len(), 1, "{lines:?}");
    assert_eq!(damage[0]["position"], positions[1]);
    assert_eq!(damage[0]["offset"], 3);
    assert!(damage[0]["reason"].as_str().unwrap().starts_with("CRC-32C mismatch: stored 0x"), "{damage:?}");
    // The damaged batch's records are not decoded; the others' are.
    assert_eq!(field(&of_type(&lines, "record"), "offset"), [0, 1, 2, 7, 8]);
    let (code, text, _) = dump(&[&path(copy.path(), ".log")]);
    assert_eq!(code, 1);
    assert!(text.contains(" crcValid: false (computed 0x"), "{text}");
    assert!(
        text.contains(&format!("damage at byte {} (offset 3): CRC-32C mismatch", positions[1])),
        "{text}"
    );
    assert!(text.trim_end().ends_with("DAMAGED (1 places, above)"), "{text}");

    // A torn tail: the dump stops at the last batch's start and says why.
    let copy = copy_segment(&dir, "dump-torn");
    std::fs::write(path(copy.path(), ".log"), &original[..original.len() - 10]).unwrap();
    let (code, lines) = dump_json(&[&path(copy.path(), ".log")]);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(field(&of_type(&lines, "batch"), "base_offset"), [0, 3]);
    let damage = of_type(&lines, "damage");
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0]["position"], positions[2]);
    let reason = damage[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("torn batch: its header says {} bytes", sizes[2])), "{reason}");
    assert_eq!(of_type(&lines, "summary")[0]["batch_bytes"], positions[2]);
    // Torn inside a header.
    std::fs::write(path(copy.path(), ".log"), &original[..positions[2] as usize + 30]).unwrap();
    let (code, text, _) = dump(&[&path(copy.path(), ".log")]);
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!("damage at byte {} (offset 7): torn batch header", positions[2])),
        "{text}"
    );

    // Garbage after the last batch: not a batch, the rest is not read.
    let mut bytes = original.clone();
    bytes.extend_from_slice(&[0xab; 100]);
    std::fs::write(path(copy.path(), ".log"), &bytes).unwrap();
    let (code, lines) = dump_json(&[&path(copy.path(), ".log")]);
    assert_eq!(code, 1);
    assert_eq!(of_type(&lines, "damage")[0]["position"], file_bytes);
    assert!(of_type(&lines, "damage")[0]["reason"].as_str().unwrap().contains("invalid batch length"));
    // Zeros shorter than a block: a direct write's padding, not damage;
    // a whole block of zeros is.
    for (zeros, expected) in [(100, 0), (8192, 1)] {
        let mut bytes = original.clone();
        bytes.resize(bytes.len() + zeros, 0);
        std::fs::write(path(copy.path(), ".log"), &bytes).unwrap();
        let (code, lines) = dump_json(&[&path(copy.path(), ".log")]);
        assert_eq!(code, expected, "{zeros} zeros: {lines:?}");
        let padding = if expected == 0 { zeros } else { 0 };
        assert_eq!(of_type(&lines, "summary")[0]["padding_bytes"], padding);
    }

    // The third batch's base offset rewritten (it lies outside the CRC):
    // offsets are no longer dense.
    let mut bytes = original.clone();
    bytes[positions[2] as usize..][..8].copy_from_slice(&9i64.to_be_bytes());
    std::fs::write(path(copy.path(), ".log"), &bytes).unwrap();
    let (code, lines) = dump_json(&[&path(copy.path(), ".log")]);
    assert_eq!(code, 1);
    let damage = of_type(&lines, "damage");
    assert_eq!(damage.len(), 1, "{lines:?}");
    assert_eq!(damage[0]["reason"], "batch base offset 9 where 7 was expected (offsets are dense)");

    // Indexes: an entry pointing where its batch does not start, entries
    // out of order, a torn entry.
    let copy = copy_segment(&dir, "dump-index");
    let index = std::fs::read(path(&dir, ".index")).unwrap();
    let mut bytes = index.clone();
    bytes[4..8].copy_from_slice(&(positions[1] as u32 + 1).to_be_bytes());
    std::fs::write(path(copy.path(), ".index"), &bytes).unwrap();
    let (code, lines) = dump_json(&[&path(copy.path(), ".index")]);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(of_type(&lines, "offset_index_entry").len(), 2);
    let reason = of_type(&lines, "damage")[0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("where no batch starts"), "{reason}");
    let swapped = [&index[8..16], &index[0..8]].concat();
    std::fs::write(path(copy.path(), ".index"), &swapped).unwrap();
    let (code, text, _) = dump(&[&path(copy.path(), ".index")]);
    assert_eq!(code, 1);
    assert!(text.contains("offset: 7 position: "), "{text}");
    assert!(text.contains("damage at byte 8: entry 1: relative offset 3 at byte"), "{text}");
    assert!(text.contains("not after the entry before it (relative offset 7 at byte"), "{text}");
    std::fs::write(path(copy.path(), ".index"), &index[..12]).unwrap();
    let (code, text, _) = dump(&[&path(copy.path(), ".index")]);
    assert_eq!(code, 1);
    assert!(
        text.contains("damage at byte 8: 4 bytes after the last whole entry (entries are 8 bytes)"),
        "{text}"
    );
    let times = std::fs::read(path(&dir, ".timeindex")).unwrap();
    std::fs::write(path(copy.path(), ".timeindex"), [&times[..], &times[..]].concat()).unwrap();
    let (code, text, _) = dump(&[&path(copy.path(), ".timeindex")]);
    assert_eq!(code, 1);
    assert!(
        text.contains("damage at byte 12: entry 1: timestamp 1700000000003 at relative offset 3: not after"),
        "{text}"
    );
}

#[test]
fn unreadable_files_and_bad_usage_exit_2() {
    let dir = data_dir("dump-usage");
    let missing = dir.path().join(format!("{SEGMENT}.log"));
    let (code, stdout, stderr) = dump(&[missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.starts_with("ringtail dump-log: cannot read "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let other = dir.path().join("leader-epoch-checkpoint");
    std::fs::write(&other, "0\n0\n").unwrap();
    let (code, _, stderr) = dump(&[other.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a segment file"), "{stderr}");
    let (code, _, stderr) = dump(&[dir.path().join("x.log").to_str().unwrap(), "--from-offset", "-1"]);
    assert_eq!(code, 2, "{stderr}");
    // An empty segment (a new log's) is clean.
    std::fs::write(&missing, b"").unwrap();
    let (code, text, _) = dump(&[missing.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.ends_with("end: 0 batches, 0 records in 0 of 0 bytes; no damage\n"), "{text}");
}
