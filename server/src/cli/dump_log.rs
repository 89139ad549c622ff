//! `ringtail dump-log FILE [--records] [--from-offset N] [--json]`: what a
//! segment file holds, as Kafka's `kafka-dump-log` shows it, read from the
//! file alone (no broker needed; a running broker's files may be read too).
//!
//! - `.log`: each record batch's header (offsets, position, size, CRC-32C
//!   stored and whether it matches, producer, attributes, timestamps) and,
//!   with `--records`, each record, compressed batches decompressed.
//! - `.index`: each `(offset, position)` entry, checked to be in order and
//!   to point at the start of the batch with that base offset in the `.log`
//!   beside it; `.timeindex`: each `(timestamp, offset)` entry.
//!
//! The batches and indexes are read with the engine's own code (`BatchHeader`,
//! `validate_batch`, the record decoder, the codecs, `SegmentIndex::decode`),
//! so what this prints is what the broker would make of the file. Where the
//! broker's recovery would stop (a torn or unparseable tail) the dump stops
//! too and says where and why; a batch whose CRC does not match is shown and
//! the dump goes on, since its length still says where the next one starts.
//!
//! Exit code: 0 for a clean file, 1 if it is damaged anywhere, 2 for bad
//! usage or a file that cannot be read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{finish, CliError};
use ringtail_engine::log::batch::{validate_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};
use ringtail_engine::log::index::{SegmentIndex, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
use ringtail_engine::log::records::{decompress, iter_checked_records, iter_records, RecordRef};
use ringtail_engine::log::segment::{
    file_name, parse_file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Zeros after the last batch shorter than this are a direct-I/O write's
/// padding of its last block (a running broker's active segment has them;
/// closing or recovering the log trims them), not damage. No device the
/// io_uring backend writes to has a larger logical block.
const PADDING_BYTES_MAX: u64 = 4096;

/// Bytes read from the file at a time.
const READ_BUFFER_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DumpLogArgs {
    /// A segment file: NNNNNNNNNNNNNNNNNNNN.log, .index or .timeindex.
    pub file: PathBuf,
    /// Also print each record of each batch (offset, timestamp, key and
    /// value as UTF-8, lossily, with their sizes, header count), compressed
    /// batches decompressed.
    #[arg(long)]
    pub records: bool,
    /// Print only batches, records and index entries from this offset on;
    /// the whole file is still checked.
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<u64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Damaged,
}

pub fn run(args: DumpLogArgs) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut dump = Dump { out: &mut out, json: args.json, damage: 0 };
    let result = dump.file(&args).and_then(|()| dump.out.flush().map_err(Failure::Output));
    let verdict = dump.verdict();
    let code = |verdict| match verdict {
        Verdict::Clean => ExitCode::SUCCESS,
        Verdict::Damaged => ExitCode::from(1),
    };
    match result {
        Ok(()) => code(verdict),
        // A reader that went away (`| head`) has what it wanted.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => code(verdict),
        Err(Failure::Output(e)) => {
            finish("dump-log", Err(CliError::Runtime(format!("cannot write output: {e}"))))
        }
        Err(Failure::Cli(e)) => finish("dump-log", Err(e)),
    }
}

enum Failure {
    /// Writing the dump failed.
    Output(io::Error),
    Cli(CliError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Output(e)
    }
}

/// Reading the dumped file failed: it cannot be read, which is exit code 2,
/// as for a file that does not exist.
fn unreadable(path: &Path, e: io::Error) -> Failure {
    Failure::Cli(CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Log,
    OffsetIndex,
    TimeIndex,
}

impl Kind {
    fn of(path: &Path) -> Option<(Kind, &'static str)> {
        let name = path.file_name()?.to_str()?;
        [(Kind::Log, LOG_SUFFIX), (Kind::OffsetIndex, INDEX_SUFFIX), (Kind::TimeIndex, TIME_INDEX_SUFFIX)]
            .into_iter()
            .find(|(_, suffix)| name.ends_with(suffix))
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::OffsetIndex => "offset index",
            Kind::TimeIndex => "time index",
        }
    }
}

struct Dump<'a, W: Write> {
    out: &'a mut W,
    json: bool,
    /// Damaged places reported so far.
    damage: u64,
}

impl<W: Write> Dump<'_, W> {
    fn verdict(&self) -> Verdict {
        if self.damage == 0 {
            Verdict::Clean
        } else {
            Verdict::Damaged
        }
    }

    fn file(&mut self, args: &DumpLogArgs) -> Result<(), Failure> {
        let path = &args.file;
        let Some((kind, suffix)) = Kind::of(path) else {
            return Err(Failure::Cli(CliError::Usage(format!(
                "{}: not a segment file (expected a name ending in {LOG_SUFFIX}, {INDEX_SUFFIX} or \
                 {TIME_INDEX_SUFFIX})",
                path.display()
            ))));
        };
        let file = File::open(path).map_err(|e| unreadable(path, e))?;
        let metadata = file.metadata().map_err(|e| unreadable(path, e))?;
        if !metadata.is_file() {
            return Err(Failure::Cli(CliError::Usage(format!("{} is not a regular file", path.display()))));
        }
        let bytes = metadata.len();
        // The segment's base offset, from its name as the broker names it.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let base_offset = parse_file_name(name, suffix);
        self.emit(&Event::File { path, kind: kind.name(), bytes, base_offset })?;
        let from = args.from_offset.unwrap_or(0);
        match kind {
            Kind::Log => self.log(path, file, bytes, base_offset, from, args.records),
            Kind::OffsetIndex | Kind::TimeIndex => self.index(path, file, bytes, kind, base_offset, from),
        }
    }

    /// Reports one damaged place: where, at which offset if known, and why.
    fn damage(&mut self, position: u64, offset: Option<u64>, reason: &str) -> io::Result<()> {
        self.damage += 1;
        self.emit(&Event::Damage { position, offset, reason })
    }

    fn emit(&mut self, event: &Event<'_>) -> io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut *self.out, event)?;
            return writeln!(self.out);
        }
        match *event {
            Event::File { path, kind, bytes, base_offset } => {
                writeln!(self.out, "Dumping {} ({kind}, {bytes} bytes)", path.display())?;
                if base_offset.is_none() && kind != Kind::Log.name() {
                    writeln!(self.out, "(the file name gives no base offset: offsets are relative to it)")?;
                }
                Ok(())
            }
            Event::Batch(ref b) => {
                let crc_valid = match b.crc_valid {
                    true => "true".to_owned(),
                    false => format!("false (computed {:#010x})", b.crc_computed),
                };
                writeln!(
                    self.out,
                    "baseOffset: {} lastOffset: {} count: {} position: {} size: {} magic: {} crc: {:#010x} \
                     crcValid: {crc_valid} partitionLeaderEpoch: {} producerId: {} producerEpoch: {} \
                     baseSequence: {} compression: {} isTransactional: {} isControl: {} timestampType: {} \
                     firstTimestamp: {} maxTimestamp: {}",
                    b.base_offset,
                    b.last_offset,
                    b.count,
                    b.position,
                    b.size,
                    b.magic,
                    b.crc,
                    b.partition_leader_epoch,
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                    b.compression,
                    b.transactional,
                    b.control,
                    b.timestamp_type,
                    b.first_timestamp,
                    b.max_timestamp,
                )
            }
            Event::Record(ref r) => {
                // Debug-quoted: control characters in binary payloads are escaped.
                let quoted = |text: &Option<Cow<str>>| {
                    text.as_ref().map_or_else(|| "null".to_owned(), |t| format!("{t:?}"))
                };
                writeln!(
                    self.out,
                    "| offset: {} timestamp: {} keySize: {} key: {} valueSize: {} value: {} headers: {}",
                    r.offset,
                    r.timestamp,
                    r.key_size,
                    quoted(&r.key),
                    r.value_size,
                    quoted(&r.value),
                    r.header_count,
                )
            }
            Event::OffsetIndexEntry { offset, position } => {
                writeln!(self.out, "offset: {offset} position: {position}")
            }
            Event::TimeIndexEntry { timestamp, offset } => {
                writeln!(self.out, "timestamp: {timestamp} offset: {offset}")
            }
            Event::Damage { position, offset: Some(offset), reason } => {
                writeln!(self.out, "damage at byte {position} (offset {offset}): {reason}")
            }
            Event::Damage { position, offset: None, reason } => {
                writeln!(self.out, "damage at byte {position}: {reason}")
            }
            Event::LogSummary { batches, records, batch_bytes, padding_bytes, file_bytes, damage } => {
                let padding = match padding_bytes {
                    0 => String::new(),
                    n => format!(
                        " and {n} bytes of zero padding (a direct-I/O write's last block; trimmed on close)"
                    ),
                };
                writeln!(
                    self.out,
                    "end: {batches} batches, {records} records in {batch_bytes} of {file_bytes} bytes{padding}; {}",
                    verdict_text(damage)
                )
            }
            Event::IndexSummary { entries, file_bytes, damage } => {
                writeln!(self.out, "end: {entries} entries in {file_bytes} bytes; {}", verdict_text(damage))
            }
        }
    }

    fn log(
        &mut self,
        path: &Path,
        file: File,
        file_bytes: u64,
        base_offset: Option<u64>,
        from: u64,
        records: bool,
    ) -> Result<(), Failure> {
        let mut reader = Segment { file: BufReader::with_capacity(READ_BUFFER_BYTES, file), position: 0 };
        let mut summary = LogSummary::default();
        // The offset the next batch must start at: batches are dense.
        let mut expected = base_offset;
        while reader.position < file_bytes {
            let position = reader.position;
            let head = reader.read_up_to(BATCH_HEADER_BYTES).map_err(|e| unreadable(path, e))?;
            let header = match BatchHeader::parse(&head) {
                Ok(header) if (file_bytes - position) as usize >= header.size_bytes() => header,
                Ok(header) => {
                    let reason = format!(
                        "torn batch: its header says {} bytes, the file ends {} bytes after its start (a write \
                         cut short, or a damaged length)",
                        header.size_bytes(),
                        file_bytes - position
                    );
                    self.damage(position, Some(header.base_offset as u64), &reason)?;
                    break;
                }
                Err(e) => {
                    let rest = file_bytes - position;
                    let zeros = head.iter().all(|&b| b == 0)
                        && rest < PADDING_BYTES_MAX
                        && reader.rest_is_zero().map_err(|e| unreadable(path, e))?;
                    if zeros {
                        summary.padding_bytes = rest;
                    } else {
                        let reason = match e {
                            BatchError::Incomplete { .. } => {
                                format!("torn batch header: the file ends {rest} bytes after it starts")
                            }
                            e => format!("{e}; the {rest} bytes from here on are not read"),
                        };
                        self.damage(position, expected, &reason)?;
                    }
                    break;
                }
            };
            let mut batch = head;
            let rest =
                reader.read_up_to(header.size_bytes() - batch.len()).map_err(|e| unreadable(path, e))?;
            batch.extend_from_slice(&rest);
            let computed = match validate_batch(&batch) {
                Ok(_) => header.crc,
                Err(BatchError::BadCrc { computed, .. }) => computed,
                // Only if the file shrank while it was read (a broker
                // truncating it): the bytes the length promised are gone.
                Err(e) => {
                    self.damage(position, Some(header.base_offset as u64), &format!("{e} (file changed?)"))?;
                    break;
                }
            };
            summary.batches += 1;
            summary.records += header.record_count as u64;
            summary.batch_bytes = reader.position;
            let base = header.base_offset as u64;
            let shown = header.last_offset() >= from;
            if shown {
                self.emit(&Event::Batch(BatchLine::new(&header, position, computed)))?;
            }
            if let Some(expected) = expected.filter(|&e| e != base) {
                let reason =
                    format!("batch base offset {base} where {expected} was expected (offsets are dense)");
                self.damage(position, Some(expected), &reason)?;
            }
            expected = Some(header.next_offset());
            if computed != header.crc {
                let reason =
                    format!("CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}", header.crc);
                self.damage(position, Some(base), &reason)?;
            } else if records && shown {
                self.records(&batch, header, position, from)?;
            }
        }
        let LogSummary { batches, records, batch_bytes, padding_bytes } = summary;
        let damage = self.damage;
        self.emit(&Event::LogSummary { batches, records, batch_bytes, padding_bytes, file_bytes, damage })?;
        Ok(())
    }

    /// The records of `batch` (its CRC checked) from offset `from` on.
    fn records(&mut self, batch: &[u8], header: BatchHeader, position: u64, from: u64) -> io::Result<()> {
        let plain: Cow<[u8]> = match header.compression() {
            0 => Cow::Borrowed(batch),
            _ => match decompress::uncompressed(batch) {
                Ok(plain) => Cow::Owned(plain),
                Err(e) => {
                    let offset = Some(header.base_offset as u64);
                    return self.damage(position, offset, &format!("records do not decompress: {e}"));
                }
            },
        };
        let iter = match header.compression() {
            0 => iter_checked_records(&plain, header),
            _ => match iter_records(&plain) {
                Ok((_, iter)) => iter,
                Err(e) => return self.damage(position, Some(header.base_offset as u64), &e.to_string()),
            },
        };
        for record in iter {
            match record {
                Ok(record) if record.offset >= 0 && record.offset as u64 >= from => {
                    self.emit(&Event::Record(RecordLine::new(&record)))?
                }
                Ok(_) => {}
                Err(e) => {
                    let reason = format!("records do not decode: {e}");
                    return self.damage(position, Some(header.base_offset as u64), &reason);
                }
            }
        }
        Ok(())
    }

    /// An offset or time index: its entries, checked by the engine's own
    /// loader (`SegmentIndex::decode`) and against the `.log` beside it.
    fn index(
        &mut self,
        path: &Path,
        mut file: File,
        file_bytes: u64,
        kind: Kind,
        base_offset: Option<u64>,
        from: u64,
    ) -> Result<(), Failure> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| unreadable(path, e))?;
        let base = base_offset.unwrap_or(0);
        let log = base_offset.and_then(|b| File::open(path.with_file_name(file_name(b, LOG_SUFFIX))).ok());
        let log_bytes = log.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len());
        let entry_bytes = if kind == Kind::OffsetIndex { OFFSET_ENTRY_BYTES } else { TIME_ENTRY_BYTES };
        let entries = bytes.len() / entry_bytes;
        // The engine's loader takes a whole index or none of it. A prefix of
        // a valid index is valid, so the longest prefix it takes is found by
        // bisection, and the entry after it is the first bad one.
        let decode = |n: usize| {
            let prefix = &bytes[..n * entry_bytes];
            let (offsets, times) =
                if kind == Kind::OffsetIndex { (prefix, &[][..]) } else { (&[][..], prefix) };
            SegmentIndex::decode(base, 1, u64::MAX, offsets, times, log_bytes.unwrap_or(u64::MAX))
        };
        let (mut good, mut bad) = (0, entries + 1);
        while good + 1 < bad {
            let mid = (good + bad) / 2;
            if decode(mid).is_some() {
                good = mid;
            } else {
                bad = mid;
            }
        }
        let index = decode(good).expect("the empty prefix is valid");
        for (i, e) in index.offsets.iter().enumerate() {
            let offset = base + u64::from(e.relative_offset);
            if offset >= from {
                self.emit(&Event::OffsetIndexEntry { offset, position: e.position })?;
            }
            // Every entry is checked, shown or not.
            if let Some(reason) = log.as_ref().and_then(|log| points_at_batch(log, e.position, offset)) {
                self.damage((i * entry_bytes) as u64, Some(offset), &reason)?;
            }
        }
        for e in index.times.iter().filter(|e| base + u64::from(e.relative_offset) >= from) {
            let offset = base + u64::from(e.relative_offset);
            self.emit(&Event::TimeIndexEntry { timestamp: e.timestamp, offset })?;
        }
        let at = good * entry_bytes;
        if good < entries {
            let entry = &bytes[at..at + entry_bytes];
            let reason = match kind {
                Kind::OffsetIndex => bad_offset_entry(&index, entry, log_bytes),
                _ => bad_time_entry(&index, entry),
            };
            let reason = format!(
                "entry {good}: {reason}; the broker rebuilds this index from the log; the {} bytes from \
                 here on are not shown",
                bytes.len() - at
            );
            self.damage(at as u64, None, &reason)?;
        } else if at < bytes.len() {
            let reason = format!(
                "{} bytes after the last whole entry (entries are {entry_bytes} bytes)",
                bytes.len() - at
            );
            self.damage(at as u64, None, &reason)?;
        }
        let damage = self.damage;
        self.emit(&Event::IndexSummary { entries: good, file_bytes, damage })?;
        Ok(())
    }
}

fn verdict_text(damage: u64) -> String {
    match damage {
        0 => "no damage".to_owned(),
        n => format!("DAMAGED ({n} places, above)"),
    }
}

/// One line of the dump: a JSON object (`"type"` first, then the fields)
/// with `--json`, else text in kafka-dump-log's style.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    File {
        path: &'a Path,
        kind: &'static str,
        bytes: u64,
        base_offset: Option<u64>,
    },
    Batch(BatchLine),
    Record(RecordLine<'a>),
    OffsetIndexEntry {
        offset: u64,
        position: u32,
    },
    TimeIndexEntry {
        timestamp: i64,
        offset: u64,
    },
    Damage {
        position: u64,
        offset: Option<u64>,
        reason: &'a str,
    },
    #[serde(rename = "summary")]
    LogSummary {
        batches: u64,
        records: u64,
        batch_bytes: u64,
        padding_bytes: u64,
        file_bytes: u64,
        damage: u64,
    },
    #[serde(rename = "summary")]
    IndexSummary {
        entries: usize,
        file_bytes: u64,
        damage: u64,
    },
}

#[derive(Serialize)]
struct BatchLine {
    base_offset: i64,
    last_offset: u64,
    count: i32,
    position: u64,
    size: usize,
    magic: i8,
    crc: u32,
    crc_computed: u32,
    crc_valid: bool,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    compression: &'static str,
    transactional: bool,
    control: bool,
    timestamp_type: &'static str,
    first_timestamp: i64,
    max_timestamp: i64,
}

impl BatchLine {
    fn new(h: &BatchHeader, position: u64, crc_computed: u32) -> BatchLine {
        BatchLine {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            count: h.record_count,
            position,
            size: h.size_bytes(),
            magic: h.magic,
            crc: h.crc,
            crc_computed,
            crc_valid: h.crc == crc_computed,
            partition_leader_epoch: h.partition_leader_epoch,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            attributes: h.attributes,
            compression: codec_name(h.compression()),
            transactional: h.is_transactional(),
            control: h.is_control(),
            timestamp_type: if h.is_log_append_time() { "LogAppendTime" } else { "CreateTime" },
            first_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
        }
    }
}

#[derive(Serialize)]
struct RecordLine<'a> {
    offset: i64,
    timestamp: i64,
    /// -1 for a null key, as Kafka writes it.
    key_size: i64,
    /// UTF-8, invalid sequences replaced (U+FFFD).
    key: Option<Cow<'a, str>>,
    value_size: i64,
    value: Option<Cow<'a, str>>,
    header_count: usize,
    header_keys: Vec<&'a str>,
}

impl<'a> RecordLine<'a> {
    fn new(r: &RecordRef<'a>) -> RecordLine<'a> {
        let size = |b: Option<&[u8]>| b.map_or(-1, |b| b.len() as i64);
        let header_keys: Vec<&str> = r.headers().map(|(key, _)| key).collect();
        RecordLine {
            offset: r.offset,
            timestamp: r.timestamp_ms,
            key_size: size(r.key),
            key: r.key.map(String::from_utf8_lossy),
            value_size: size(r.value),
            value: r.value.map(String::from_utf8_lossy),
            header_count: header_keys.len(),
            header_keys,
        }
    }
}

/// Why the offset index entry `entry` (big-endian relative offset and
/// position) cannot follow `index`'s entries: the engine's rules.
fn bad_offset_entry(index: &SegmentIndex, entry: &[u8], log_bytes: Option<u64>) -> String {
    let relative = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
    let position = u32::from_be_bytes(entry[4..8].try_into().expect("4 bytes"));
    let said = format!("relative offset {relative} at byte {position}");
    match (index.offsets.last(), log_bytes) {
        _ if position == 0 => format!("{said}: byte 0 is the segment's start and never indexed"),
        (_, Some(log_bytes)) if u64::from(position) >= log_bytes => {
            format!("{said}: past the end of the log ({log_bytes} bytes)")
        }
        (Some(last), _) => format!(
            "{said}: not after the entry before it (relative offset {} at byte {})",
            last.relative_offset, last.position
        ),
        (None, _) => format!("{said}: not a valid entry"),
    }
}

/// Why the time index entry `entry` (big-endian timestamp and relative
/// offset) cannot follow `index`'s entries.
fn bad_time_entry(index: &SegmentIndex, entry: &[u8]) -> String {
    let timestamp = i64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
    let relative = u32::from_be_bytes(entry[8..12].try_into().expect("4 bytes"));
    match index.times.last() {
        Some(last) => format!(
            "timestamp {timestamp} at relative offset {relative}: not after the entry before it (timestamp {} \
             at relative offset {}); both must increase",
            last.timestamp, last.relative_offset
        ),
        None => format!("timestamp {timestamp} at relative offset {relative}: not a valid entry"),
    }
}

#[derive(Default)]
struct LogSummary {
    batches: u64,
    records: u64,
    /// Bytes of whole batches from the start of the file.
    batch_bytes: u64,
    /// Zeros after the last batch that are a direct write's padding.
    padding_bytes: u64,
}

/// A `.log` file read from its start, each byte once.
struct Segment {
    file: BufReader<File>,
    position: u64,
}

impl Segment {
    /// The next `n` bytes, or fewer at the end of the file.
    fn read_up_to(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(n);
        (&mut self.file).take(n as u64).read_to_end(&mut buf)?;
        self.position += buf.len() as u64;
        Ok(buf)
    }

    /// Whether everything after what was read is zeros (the caller has
    /// checked that it is short).
    fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut rest = Vec::new();
        self.file.read_to_end(&mut rest)?;
        Ok(rest.iter().all(|&b| b == 0))
    }
}

/// Why the offset index entry `(offset, position)` does not lead to the
/// batch that starts at `offset` in `log`, if it does not.
fn points_at_batch(log: &File, position: u32, offset: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0u8; BATCH_HEADER_BYTES];
    let read = log.read_at(&mut head, u64::from(position)).unwrap_or(0);
    head.truncate(read);
    match BatchHeader::parse(&head) {
        Ok(h) if h.base_offset as u64 == offset => None,
        Ok(h) => Some(format!(
            "the entry says offset {offset} starts at byte {position} of the log, where a batch with base \
             offset {} starts (a stale or damaged index; the broker rebuilds it)",
            h.base_offset
        )),
        Err(e) => Some(format!(
            "the entry says offset {offset} starts at byte {position} of the log, where no batch starts \
             ({e}; a stale or damaged index; the broker rebuilds it)"
        )),
    }
}

fn codec_name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}
