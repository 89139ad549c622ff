//! `produce_batches`: the record batches of Produce requests, as a client
//! could send them, through `Partition::produce` (what the broker calls for
//! a partition it leads): `Log::validate_produced` (sizes, CRC-32C, dense
//! offsets, then `log::validator`: record by record, decompressed first,
//! control/transactional/LogAppendTime attributes, timestamp bounds,
//! `max_timestamp` restamped), the idempotent producers' sequence checks,
//! and the group-commit append (offsets and epoch stamped, rolls), on a
//! `MemDisk` with a `ManualClock`, no runtime and no server.
//!
//! What the other targets leave: `record_batch` checks batch parsing and
//! record decoding, not what a leader accepts; `kafka_request` (mode bit 2,
//! CRCs fixed) reaches the same append through the whole server (frame and
//! request decoding, handlers, a broker on a real file system), 5-15 times
//! slower per input (500-1,900 executions/s against 8,000 here), with one
//! fixed topic config, and checks only that a refused produce changes
//! nothing and that fetched batches are whole. Here each input is a few
//! appends to one log whose config the input picks (LogAppendTime, tight
//! timestamp bounds, a small max.message.bytes, small segments that roll
//! between appends), and the outcome is checked against a reference.
//!
//! Input: a config byte (`CFG_*` bits), then requests, each an op byte
//! (`OP_*` bits and the clock step), a big-endian u16 length, and that many
//! bytes of record batches (cut at the input's end). Unless `OP_KEEP_CRC`,
//! every batch whose length field fits gets its CRC-32C recomputed, so that
//! mutations reach the checks past the CRC.
//!
//! Checked, for every request:
//!
//! - nothing panics (engine debug assertions included: the fuzz build and
//!   the replay test both have them), no single allocation exceeds
//!   `alloc::ALLOC_BYTES_MAX`, no append hangs;
//! - accepted or refused as `rules` (Kafka's rules, written apart from the
//!   engine's validator) says: batches valid as sent, and for an
//!   idempotent batch its sequence against the producer's last five;
//! - a refused request changes nothing stored (every file in the log's
//!   directory, the log end offset, the producer state);
//! - a retried idempotent batch is answered with its first offsets and
//!   changes nothing stored;
//! - an accepted request lands at the old log end, one offset per record,
//!   and is read back as whole valid batches with dense offsets, this
//!   leader epoch, the request's bytes otherwise unchanged but for the
//!   timestamp type and the `max_timestamp` the rules say.
//!
//! And at the end: the whole log reads back as the batches accepted, in
//! order; with `CFG_REOPEN`, again after a clean close and `Log::open`, and
//! the reopened partition rebuilds the same producer state (when the log
//! has at most the two segments it reads for that).

mod rules;

pub use rules::Rules;

use crate::exec::block_on;
use bytes::{BufMut, Bytes, BytesMut};
use ringtail_engine::broker::{Acks, Partition};
use ringtail_engine::clock::{Clock, ManualClock};
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::batch::{validate_batch, BatchScanner};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig, TimestampType, TopicPartition};
use rules::{Expected, Producers, Sequence};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Config bit: `message.timestamp.type=LogAppendTime`.
pub const CFG_LOG_APPEND_TIME: u8 = 1;
/// Config bit: `segment.bytes=1024`, so appends roll segments.
pub const CFG_SMALL_SEGMENTS: u8 = 2;
/// Config bit: `max.message.bytes=512`.
pub const CFG_SMALL_MAX_MESSAGE: u8 = 4;
/// Config bit: timestamps within a minute either side of the broker's clock.
pub const CFG_TIGHT_TIMESTAMPS: u8 = 8;
/// Config bit: close and reopen (recover) the log at the end, and check it.
pub const CFG_REOPEN: u8 = 16;
/// Config bit: `flush=never` (else always).
pub const CFG_FLUSH_NEVER: u8 = 32;
/// Config bit: `index.interval.bytes=64`.
pub const CFG_DENSE_INDEX: u8 = 64;

/// Op bit: leave the request's CRCs as sent.
pub const OP_KEEP_CRC: u8 = 1;
/// Op bit: a new leader epoch before this request.
pub const OP_NEW_EPOCH: u8 = 2;
/// Op bits 2-4: how far the clock moves before this request.
const CLOCK_STEPS_MS: [i64; 8] = [0, 1, 1_000, 59_000, 61_000, 3_600_000, 7 * 86_400_000, -120_000];

/// Requests per input.
pub const REQUESTS_MAX: usize = 16;
pub const T0: i64 = 1_700_000_000_000;
const ROOT: &str = "/fuzz-produce";

/// One request: op byte and its record batches.
pub fn request(op: u8, records: &[u8]) -> Vec<u8> {
    let mut out = vec![op];
    out.extend((records.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend(&records[..records.len().min(u16::MAX as usize)]);
    out
}

/// The op byte's clock step bits for `CLOCK_STEPS_MS[step]`.
pub fn clock_step(step: u8) -> u8 {
    (step & 7) << 2
}

fn config_of(cfg: u8) -> LogConfig {
    let mut c = LogConfig::default();
    if cfg & CFG_LOG_APPEND_TIME != 0 {
        c.timestamp_type = TimestampType::LogAppendTime;
    }
    if cfg & CFG_SMALL_SEGMENTS != 0 {
        c.segment_bytes = 1024;
    }
    if cfg & CFG_SMALL_MAX_MESSAGE != 0 {
        c.max_message_bytes = 512;
    }
    if cfg & CFG_TIGHT_TIMESTAMPS != 0 {
        c.timestamp_before_max_ms = 60_000;
        c.timestamp_after_max_ms = 60_000;
    }
    if cfg & CFG_FLUSH_NEVER != 0 {
        c.flush = FlushPolicy::Never;
    }
    if cfg & CFG_DENSE_INDEX != 0 {
        c.index_interval_bytes = 64;
    }
    c
}

/// Recomputes the CRC-32C of every batch in `buf` whose length field fits
/// (a producer's batches are checksummed as sent), walking by the length
/// fields as a reader would.
pub fn fix_crcs(buf: &mut [u8]) {
    let mut at = 0;
    while buf.len() - at >= reference_header() {
        let length = i32::from_be_bytes(buf[at + 8..at + 12].try_into().unwrap());
        let Ok(size) = usize::try_from(i64::from(length) + 12) else { return };
        if size < reference_header() || size > buf.len() - at {
            return;
        }
        let batch = &mut buf[at..at + size];
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        at += size;
    }
}

fn reference_header() -> usize {
    crate::reference::HEADER_BYTES
}

struct Harness {
    disk: Arc<MemDisk>,
    clock: Arc<ManualClock>,
    config: LogConfig,
    partition: Partition<MemDisk>,
    epoch: i32,
    producers: Producers,
    /// Every batch accepted, as read back after its append.
    stored: Vec<Bytes>,
}

fn dir() -> PathBuf {
    Path::new(ROOT).join("p-0")
}

fn tp() -> TopicPartition {
    TopicPartition::new("p", 0)
}

fn open_partition(
    disk: &Arc<MemDisk>,
    clock: &Arc<ManualClock>,
    config: LogConfig,
    checkpoint: LogCheckpoint,
    epoch: i32,
) -> Partition<MemDisk> {
    let cache = LogCache::new(1 << 20);
    let (log, _) = block_on(Log::open(disk.clone(), dir(), config, clock.clone(), checkpoint, &cache))
        .expect("open the log");
    block_on(Partition::open(tp(), Arc::new(log), epoch))
}

pub fn run(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else { return };
    let disk = Arc::new(MemDisk::new());
    let clock = Arc::new(ManualClock::new(T0));
    let config = config_of(cfg);
    let partition = open_partition(&disk, &clock, config, LogCheckpoint::default(), 0);
    block_on(partition.log.assign_epoch(0, 0)).expect("assign epoch 0");
    let mut h = Harness {
        disk,
        clock,
        config,
        partition,
        epoch: 0,
        producers: Producers::default(),
        stored: Vec::new(),
    };
    for step in 0..REQUESTS_MAX {
        let Some((&op, tail)) = rest.split_first() else { break };
        let (len, tail) = match tail {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => (tail.len(), &[][..]),
        };
        let (records, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        h.produce(step, op, records);
    }
    h.check_whole_log("at the end");
    if cfg & CFG_REOPEN != 0 {
        h.reopen();
    }
}

impl Harness {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn rules(&self) -> Rules {
        Rules {
            log_append_time: self.config.timestamp_type == TimestampType::LogAppendTime,
            before_max_ms: self.config.timestamp_before_max_ms,
            after_max_ms: self.config.timestamp_after_max_ms,
            max_message_bytes: self.config.max_message_bytes,
            now_ms: self.now_ms(),
        }
    }

    /// Every file of the log's directory, by name.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut names = block_on(self.disk.list(&dir())).expect("list the log directory");
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), self.disk.contents(&dir().join(&n)).expect("read a file")))
            .collect()
    }

    fn produce(&mut self, step: usize, op: u8, records: &[u8]) {
        self.clock.advance_ms(CLOCK_STEPS_MS[usize::from(op >> 2 & 7)]);
        if op & OP_NEW_EPOCH != 0 {
            self.epoch += 1;
            let end = self.partition.log.log_end_offset();
            block_on(self.partition.log.assign_epoch(self.epoch, end)).expect("assign an epoch");
            self.partition.set_leader_epoch(self.epoch);
        }
        let mut request = records.to_vec();
        if op & OP_KEEP_CRC == 0 {
            fix_crcs(&mut request);
        }
        let verdict = rules::judge(&request, &self.rules());
        let sequence = match &verdict {
            Ok(batches) => {
                batches.iter().map(|e| self.producers.check(&e.header)).find(|s| *s != Sequence::Append)
            }
            Err(_) => None,
        };
        let files_before = self.files();
        let end_before = self.partition.log.log_end_offset();
        let producers_before = self.partition.active_producers();
        let outcome = block_on(self.partition.produce(Bytes::from(request.clone()), Acks::Leader));
        if crate::exec::tracing() {
            eprintln!(
                "step {step}: {} bytes, rules {:?}, sequence {sequence:?}: {outcome:?}",
                request.len(),
                verdict.as_ref().map(|b| b.len())
            );
        }
        let unchanged = |h: &Harness, what: &str| {
            assert_eq!(h.partition.log.log_end_offset(), end_before, "step {step}: {what} moved the log end");
            assert!(h.files() == files_before, "step {step}: {what} changed the log's files");
            assert_eq!(
                h.partition.active_producers(),
                producers_before,
                "step {step}: {what} changed producers"
            );
        };
        match (verdict, sequence, outcome) {
            (Err(_), _, Err(_)) | (Ok(_), Some(Sequence::Refused), Err(_)) => {
                unchanged(self, "a refused produce")
            }
            (Ok(_), Some(Sequence::Duplicate { base, last }), Ok(o)) => {
                assert_eq!((o.base_offset, o.last_offset), (base, last), "step {step}: a retry's offsets");
                unchanged(self, "a retried batch");
            }
            (Ok(batches), None, Ok(o)) => self.accepted(step, &request, &batches, end_before, o),
            (Err(why), _, Ok(o)) => panic!("step {step}: accepted at {o:?}, but the rules refuse it: {why}"),
            (Ok(_), s, Err(e)) => {
                panic!("step {step}: refused ({e}), but the rules accept it (sequence {s:?})")
            }
            (Ok(_), s, Ok(o)) => panic!("step {step}: answered {o:?}, but the sequence check says {s:?}"),
        }
    }

    fn accepted(
        &mut self,
        step: usize,
        request: &[u8],
        expected: &[Expected],
        end_before: u64,
        o: ringtail_engine::broker::ProduceOutcome,
    ) {
        let records: u64 = expected.iter().map(|e| e.header.record_count as u64).sum();
        assert_eq!(o.base_offset, end_before, "step {step}: not appended at the log end");
        assert_eq!(o.last_offset + 1 - o.base_offset, records, "step {step}: offsets != records");
        assert_eq!(self.partition.log.log_end_offset(), o.last_offset + 1, "step {step}: log end");
        let lat = self.config.timestamp_type == TimestampType::LogAppendTime;
        assert_eq!(o.log_append_time, if lat { self.now_ms() } else { -1 }, "step {step}: log_append_time");
        let read = self.read_range(o.base_offset, o.last_offset + 1);
        assert_eq!(read.len(), expected.len(), "step {step}: batches read back");
        let mut next = o.base_offset;
        let mut at = 0;
        for (i, (got, want)) in read.iter().zip(expected).enumerate() {
            let sent = &request[at..at + want.header.size_bytes()];
            at += want.header.size_bytes();
            let h = validate_batch(got).unwrap_or_else(|e| panic!("step {step}: batch {i} read back: {e}"));
            assert_eq!(h.base_offset as u64, next, "step {step}: batch {i} base offset");
            assert_eq!(h.record_count, want.header.record_count, "step {step}: batch {i} record count");
            assert_eq!(h.partition_leader_epoch, self.epoch, "step {step}: batch {i} leader epoch");
            assert_eq!(h.max_timestamp, want.max_timestamp, "step {step}: batch {i} max timestamp");
            assert_eq!(h.is_log_append_time(), lat, "step {step}: batch {i} timestamp type");
            assert_eq!(got.len(), sent.len(), "step {step}: batch {i} size");
            // Stamped: base offset, epoch, CRC, timestamp type, max timestamp.
            let mut masked = got.to_vec();
            masked[..8].copy_from_slice(&sent[..8]);
            masked[12..21].copy_from_slice(&sent[12..21]);
            masked[22] = masked[22] & !0x08 | sent[22] & 0x08;
            masked[35..43].copy_from_slice(&sent[35..43]);
            assert!(masked == sent, "step {step}: batch {i} changed beyond its stamps");
            next = h.next_offset();
            self.producers.appended(&h, o.base_offset, o.last_offset);
        }
        self.stored.extend(read);
    }

    /// The batches holding offsets [from, to), whole, read as a consumer
    /// would, batch by batch.
    fn read_range(&self, from: u64, to: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut offset = from;
        while offset < to {
            let read = block_on(self.partition.log.read(offset, 64 << 10, None))
                .unwrap_or_else(|e| panic!("reading offset {offset}: {e}"));
            assert!(!read.records.is_empty(), "nothing read at offset {offset} below {to}");
            for item in BatchScanner::new(&read.records) {
                let (pos, h) =
                    item.unwrap_or_else(|(pos, e)| panic!("offset {offset}: bad batch at {pos}: {e}"));
                if h.base_offset as u64 >= to {
                    break;
                }
                assert_eq!(h.base_offset as u64, offset, "reading from offset {from}: batches not dense");
                out.push(read.records.slice(pos..pos + h.size_bytes()));
                offset = h.next_offset();
            }
        }
        out
    }

    fn check_whole_log(&self, when: &str) {
        let log = &self.partition.log;
        assert_eq!(log.log_start_offset(), 0, "{when}: the log start moved");
        let all = self.read_range(0, log.log_end_offset());
        assert_eq!(all.len(), self.stored.len(), "{when}: batches in the log");
        for (i, (got, want)) in all.iter().zip(&self.stored).enumerate() {
            assert!(got == want, "{when}: batch {i} is not the one appended");
        }
    }

    fn reopen(mut self) {
        let log = self.partition.log.clone();
        let producers = self.partition.active_producers();
        let checkpoint = LogCheckpoint { recovery_point: log.flushed_offset(), log_start_offset: 0 };
        block_on(log.close()).expect("close the log");
        drop(log);
        let partition = open_partition(&self.disk, &self.clock, self.config, checkpoint, self.epoch);
        self.partition = partition;
        self.check_whole_log("after a clean reopen");
        if self.partition.log.segment_base_offsets().len() <= 2 {
            assert_eq!(self.partition.active_producers(), producers, "producer state rebuilt differently");
        }
    }
}

/// A batch as a producer builds it: `records` values, base offset 0, no
/// leader epoch; `pid` and `seq` for an idempotent one (-1 otherwise).
pub fn batch(records: &[&[u8]], timestamp: i64, pid: i64, seq: i32) -> Bytes {
    let mut b = ringtail_engine::log::records::BatchBuilder::new(0, timestamp);
    b.producer_id = pid;
    b.producer_epoch = if pid >= 0 { 0 } else { -1 };
    b.base_sequence = seq;
    for (i, r) in records.iter().enumerate() {
        b.push(
            Some(Bytes::copy_from_slice(&[i as u8])),
            Some(Bytes::copy_from_slice(r)),
            timestamp + i as i64,
        );
    }
    b.build()
}

/// `batch` with its records compressed by `compress` (codec `codec`),
/// the length and CRC made right.
pub fn compressed(batch: &[u8], codec: u8, compress: impl Fn(&[u8]) -> Vec<u8>) -> Bytes {
    let body = compress(&batch[61..]);
    let mut b = BytesMut::from(&batch[..61]);
    b.put_slice(&body);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[22] = b[22] & !0x07 | codec;
    let mut b = b.to_vec();
    fix_crcs(&mut b);
    Bytes::from(b)
}
