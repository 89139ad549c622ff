//! Tests of the io_uring backend against the real kernel.
use super::super::std_disk::contract;
use super::*;
use crate::io::aligned::AlignedBuf;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicBool;
use std::task::Poll;
use std::thread;
use std::time::Duration;

fn disk() -> UringDisk {
    UringDisk::new().expect("io_uring is enabled on this host")
}

#[test]
fn probe_completes_a_nop() {
    probe().unwrap();
}

/// Round trip, short read at EOF, set_len, sorted files-only listing,
/// rename-replaces, remove, and lock contention.
#[tokio::test]
async fn contract() {
    contract::suite(&disk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_at_distinct_offsets() {
    let dir = contract::tempdir();
    // A small ring forces the SQ-full and backlog paths.
    let disk = UringDisk::with_entries(4).unwrap();
    contract::concurrent_writes(&disk, dir.path(), 300, 10_000).await;
}

#[tokio::test]
async fn stats_count_ring_work() {
    let dir = contract::tempdir();
    let disk = disk();
    let f = disk.open(&dir.path().join("s"), OpenMode::Create).await.unwrap();
    let before = disk.stats();
    for i in 0..10u64 {
        f.write_at(i * 100, Bytes::from(vec![1; 100])).await.unwrap();
        f.sync_data().await.unwrap();
    }
    let after = disk.stats();
    assert!(after.sqes_submitted - before.sqes_submitted >= 20, "{before:?} {after:?}");
    assert!(after.completions - before.completions >= 20, "{before:?} {after:?}");
    assert!(after.enter_calls > before.enter_calls);
}

/// A completion that answers no SQE in flight (a kernel's duplicate, say)
/// is counted and ignored: the ring's count of SQEs in flight stays true,
/// so later operations are still submitted and answered.
#[tokio::test]
async fn a_stray_completion_is_ignored() {
    let dir = contract::tempdir();
    let disk = UringDisk::with_entries(4).unwrap();
    let shared = &disk.client.shared;
    {
        let _st = shared.state();
        // SAFETY: the state lock is held, so this is the queue's one handle.
        let mut sq = unsafe { shared.ring.submission_shared() };
        // SAFETY: a NOP references no memory.
        unsafe { sq.push(&opcode::Nop::new().build().user_data(u64::MAX)) }.unwrap();
    }
    shared.ring.submit().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while disk.stats().stray_completions == 0 {
        assert!(std::time::Instant::now() < deadline, "the stray was never reaped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // More operations than the ring has entries: all of them go through.
    let f = disk.open(&dir.path().join("s"), OpenMode::Create).await.unwrap();
    for i in 0..16u64 {
        f.write_at(i * 100, Bytes::from(vec![i as u8; 100])).await.unwrap();
    }
    f.sync_data().await.unwrap();
    assert_eq!(f.read_at(1500, 100).await.unwrap(), vec![15u8; 100]);
    let stats = disk.stats();
    assert_eq!(stats.stray_completions, 1, "{stats:?}");
    assert_eq!(stats.completions, stats.sqes_submitted + 1, "{stats:?}");
}

/// A durable write of one piece is one operation (RWF_DSYNC), not a write
/// and an fsync; a larger one is its pieces and one fsync.
#[tokio::test]
async fn a_small_durable_write_is_one_operation() {
    let dir = contract::tempdir();
    let disk = disk();
    let f = disk.open(&dir.path().join("d"), OpenMode::Create).await.unwrap();
    let before = disk.stats();
    f.write_at_durable(0, Bytes::from(vec![7; 4096])).await.unwrap();
    assert_eq!(disk.stats().sqes_submitted - before.sqes_submitted, 1);
    let before = disk.stats();
    let pieces = 3;
    f.write_at_durable(4096, Bytes::from(vec![8; pieces * WRITE_PIECE_BYTES])).await.unwrap();
    assert_eq!(disk.stats().sqes_submitted - before.sqes_submitted, pieces as u64 + 1);
    assert_eq!(f.len().await.unwrap(), 4096 + (pieces * WRITE_PIECE_BYTES) as u64);
}

/// Submits `ops` together, as a caller's pieces of one large write or read
/// are, and returns the ring's work for them.
async fn burst<T>(disk: &UringDisk, ops: Vec<(Op, oneshot::Receiver<io::Result<T>>)>) -> UringStats {
    let before = disk.stats();
    let (ops, replies): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
    disk.client.submit_all(ops);
    for reply in replies {
        reply.await.unwrap().unwrap();
    }
    disk.stats().since(&before)
}

#[tokio::test]
async fn a_burst_of_64_is_submitted_in_one_call() {
    let dir = contract::tempdir();
    let disk = disk();
    let f = disk.open(&dir.path().join("b"), OpenMode::Create).await.unwrap();
    let writes = (0..64u64)
        .map(|i| {
            let (tx, rx) = oneshot::channel();
            let buf = Bytes::from(vec![i as u8; 4096]);
            (Op::Write { file: Arc::clone(&f.file), offset: i * 4096, buf, done: 0, flags: 0, tx }, rx)
        })
        .collect();
    let w = burst(&disk, writes).await;
    assert_eq!((w.sqes_submitted, w.completions), (64, 64));
    assert!(w.submit_calls <= 2, "no batching: {w:?}");
    // Cached reads complete inside the submitting call, so even the
    // total of enter calls stays below the number of operations.
    let reads = (0..64u64)
        .map(|i| {
            let (tx, rx) = oneshot::channel();
            (Op::Read(piece(Arc::clone(&f.file), i * 4096, 4096, tx)), rx)
        })
        .collect();
    let r = burst(&disk, reads).await;
    assert_eq!((r.sqes_submitted, r.completions), (64, 64));
    assert!(r.submit_calls <= 2 && r.enter_calls < r.sqes_submitted, "no batching: {r:?}");
    let back = f.read_at(0, 64 * 4096).await.unwrap();
    assert!(back.chunks(4096).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8)));
}

/// Completes `op`'s next SQE on a private ring, as the driver would.
fn run_once(op: &mut Op) -> i32 {
    let mut ring = IoUring::new(2).unwrap();
    let sqe = op.sqe(0);
    // SAFETY: `op` owns the buffer and file and outlives the wait below.
    unsafe { ring.submission().push(&sqe).unwrap() };
    ring.submit_and_wait(1).unwrap();
    let cqe = ring.completion().next().unwrap();
    cqe.result()
}

#[test]
fn a_short_write_resumes_where_it_stopped() {
    let dir = contract::tempdir();
    let path = dir.path().join("short-write");
    let file = Arc::new(std_disk::open_file(&path, OpenMode::Create).unwrap());
    let (tx, mut rx) = oneshot::channel();
    let buf = Bytes::from_static(b"0123456789");
    let op = Op::Write { file, offset: 10, buf, done: 0, flags: 0, tx };
    // As if the kernel had taken only 4 bytes: the rest goes to 14..20.
    let mut op = op.complete(4).expect("a short write is resubmitted");
    let res = run_once(&mut op);
    assert_eq!(res, 6);
    assert!(op.complete(res).is_none());
    rx.try_recv().unwrap().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), [&[0; 14][..], b"456789"].concat());

    let (tx, mut rx) = oneshot::channel();
    let file = Arc::new(std_disk::open_file(&path, OpenMode::Existing).unwrap());
    let op = Op::Write { file, offset: 0, buf: Bytes::from_static(b"ab"), done: 0, flags: 0, tx };
    assert!(op.complete(0).is_none());
    assert_eq!(rx.try_recv().unwrap().unwrap_err().kind(), io::ErrorKind::WriteZero);
}

/// A single read piece of `len` bytes at `offset` of a buffered file.
fn piece(file: Arc<File>, offset: u64, len: usize, tx: oneshot::Sender<io::Result<usize>>) -> ReadOp {
    let buf = Arc::new(AlignedBuf::zeroed(len));
    ReadOp { file, offset, buf, start: 0, end: len, filled: 0, align: 1, tx }
}

#[test]
fn a_short_read_continues_until_eof() {
    let dir = contract::tempdir();
    let path = dir.path().join("short-read");
    std::fs::write(&path, b"hello world").unwrap();
    let file = Arc::new(std_disk::open_file(&path, OpenMode::Existing).unwrap());
    let (tx, mut rx) = oneshot::channel();
    let read = piece(file, 0, 20, tx);
    let buf = Arc::clone(&read.buf);
    let op = Op::Read(read);
    // As if the kernel had read 3 bytes: continue at offset 3.
    let mut op = op.complete(3).expect("a short read continues");
    let res = run_once(&mut op);
    assert_eq!(res, 8);
    let mut op = op.complete(res).expect("not yet at EOF");
    let res = run_once(&mut op);
    assert_eq!(res, 0);
    assert!(op.complete(res).is_none());
    assert_eq!(rx.try_recv().unwrap().unwrap(), 11);
    // The first 3 bytes were "read" by nobody: still zeros.
    assert_eq!(&AsRef::<[u8]>::as_ref(buf.as_ref())[..11], b"\0\0\0lo world");
}

#[tokio::test]
async fn kernel_errors_reach_the_caller() {
    let dir = contract::tempdir();
    let path = dir.path().join("ro");
    std::fs::write(&path, b"x").unwrap();
    let disk = disk();
    let file = Arc::new(File::open(&path).unwrap());
    let f = UringFile { file, align: 1, client: Arc::clone(&disk.client) };
    let err = f.write_at(0, Bytes::from_static(b"y")).await.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"x");
    let err = f.read_at(u64::MAX - 1, 10).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// Drops `value` on another thread and fails, instead of hanging, if
/// that takes more than a few seconds.
fn drop_within_deadline<T: Send + 'static>(value: T) {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        drop(value);
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("drop hung");
}

#[tokio::test]
async fn drop_after_ops_stops_the_driver() {
    let dir = contract::tempdir();
    let disk = disk();
    let f = disk.open(&dir.path().join("d"), OpenMode::Create).await.unwrap();
    f.write_at(0, Bytes::from_static(b"x")).await.unwrap();
    f.sync_data().await.unwrap();
    // The file keeps the driver running after the disk handles are gone.
    let clone = disk.clone();
    drop(disk);
    drop(clone);
    f.write_at(1, Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"xy");
    drop_within_deadline(f);
    // A disk that never did any work stops too.
    drop_within_deadline(UringDisk::new().unwrap());
}

#[tokio::test]
async fn abandoned_write_completes_before_shutdown() {
    let dir = contract::tempdir();
    let path = dir.path().join("abandoned");
    let disk = disk();
    let f = disk.open(&path, OpenMode::Create).await.unwrap();
    {
        // Poll once so the write is queued, then drop the future: the
        // driver, now the buffer's only owner, must finish the write.
        let mut fut = pin!(f.write_at(0, Bytes::from(vec![7u8; 8 << 20])));
        std::future::poll_fn(|cx| {
            let _ = fut.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
    }
    drop(f);
    drop_within_deadline(disk);
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len(), 8 << 20);
    assert!(written.iter().all(|&b| b == 7));
}

/// Reads come back exactly as a buffered read would give them, for files
/// opened for direct I/O (read in whole blocks) and plain ones, for ranges
/// aligned or not, split into several pieces or not, and running past the
/// end of a file whose length is not a multiple of the block.
#[tokio::test]
async fn reads_of_any_range_in_pieces() {
    let dir = contract::tempdir();
    let path = dir.path().join("read-ranges");
    let data: Vec<u8> = (0..3 * read::READ_PIECE_BYTES + 5000).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let disk = disk();
    let piece = read::READ_PIECE_BYTES as u64;
    let ranges = [
        (0, 4096),
        (1, 10),
        (4095, 2),
        (100, 12000),
        (piece - 1, 2),
        (0, data.len()),
        (3, 2 * read::READ_PIECE_BYTES + 7),
        (piece + 4000, 2 * read::READ_PIECE_BYTES),
        (3 * piece + 4999, 9),
        (3 * piece + 6000, 5),
    ];
    for direct in [false, true] {
        let f = match direct {
            true => disk.open_direct(&path, OpenMode::Existing).await.unwrap(),
            false => disk.open(&path, OpenMode::Existing).await.unwrap(),
        };
        for (offset, len) in ranges {
            let got = f.read_at(offset, len).await.unwrap();
            let start = (offset as usize).min(data.len());
            let end = (start + len).min(data.len());
            assert!(got[..] == data[start..end], "read of {len} at {offset}, direct {direct}");
        }
    }
}

/// Reaps `reaper`'s completions on a thread of its own until `stop`, as a
/// runtime's reactor would: waits for the eventfd, then reaps. Returns how
/// many completions it reaped.
fn reap_on_a_thread(reaper: CompletionReaper, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut reaped = 0;
        while !stop.load(Ordering::SeqCst) {
            let mut fd = libc::pollfd { fd: reaper.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the call's duration.
            unsafe { libc::poll(&mut fd, 1, 50) };
            match reaper.reap() {
                Ok(n) => reaped += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reap: {e}"),
            }
        }
        reaped
    })
}

/// With a reaper, whoever holds it answers the callers; the driver leaves
/// the completions to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaper_answers_the_callers() {
    let dir = contract::tempdir();
    let disk = disk();
    let stop = Arc::new(AtomicBool::new(false));
    let reaping = reap_on_a_thread(disk.completion_reaper(), Arc::clone(&stop));
    let f = disk.open(&dir.path().join("r"), OpenMode::Create).await.unwrap();
    let before = disk.stats();
    for i in 0..50u64 {
        f.write_at(i * 512, Bytes::from(vec![i as u8; 512])).await.unwrap();
    }
    f.sync_data().await.unwrap();
    let back = f.read_at(0, 50 * 512).await.unwrap();
    assert!(back.chunks(512).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8)));
    let completions = disk.stats().completions - before.completions;
    stop.store(true, Ordering::SeqCst);
    let reaped = reaping.join().unwrap();
    // The driver reaps what waits over REAPER_GRACE unreaped, which a test
    // thread descheduled on a loaded machine may leave it; not all of them.
    assert!(reaped > 0 && reaped as u64 <= completions, "the reaper took {reaped} of {completions}");
}

/// A reaper that never reaps (a stalled runtime) slows completions down to
/// the driver's `REAPER_GRACE` and loses none; nor does dropping it.
#[tokio::test]
async fn a_stalled_reaper_loses_nothing() {
    let dir = contract::tempdir();
    let disk = disk();
    let f = disk.open(&dir.path().join("s"), OpenMode::Create).await.unwrap();
    let stalled = disk.completion_reaper();
    for i in 0..5u64 {
        f.write_at(i * 100, Bytes::from(vec![9; 100])).await.unwrap();
    }
    f.sync_data().await.unwrap();
    assert_eq!(f.read_at(0, 500).await.unwrap(), vec![9; 500]);
    drop(stalled);
    for i in 0..5u64 {
        f.write_at(i * 100, Bytes::from(vec![8; 100])).await.unwrap();
    }
    assert_eq!(f.read_at(0, 500).await.unwrap(), vec![8; 500]);
}
