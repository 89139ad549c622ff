use super::*;
use bytes::Bytes;

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

fn disk(seed: u64) -> (SimDisk, Arc<Mutex<Taints>>) {
    let taints = Arc::new(Mutex::new(Taints::default()));
    (SimDisk::new(Rng::new(seed), Path::new("/data"), taints.clone()), taints)
}

const SEGMENT: &str = "/data/t-0/00000000000000000000.log";

/// A segment file holding `bytes`, its data and its directory entries
/// durable.
async fn synced_file(d: &SimDisk, bytes: &[u8]) -> SimFile {
    d.create_dir_all(Path::new("/data/t-0")).await.unwrap();
    let f = d.open(Path::new(SEGMENT), OpenMode::Create).await.unwrap();
    f.write_at(0, Bytes::copy_from_slice(bytes)).await.unwrap();
    f.sync_data().await.unwrap();
    for dir in ["/", "/data", "/data/t-0"] {
        d.sync_dir(Path::new(dir)).await.unwrap();
    }
    f
}

/// A flipped bit is on the medium: every later read sees it, it taints
/// the partition, and it lands only on settled (synced) bytes.
#[test]
fn flips_persist_and_taint() {
    run(async {
        let (d, taints) = disk(1);
        let f = synced_file(&d, &[0u8; 2048]).await;
        d.set_faults(DiskFaults { flip: 1.0, ..Default::default() });
        let first = f.read_at(0, 2048).await.unwrap();
        assert_eq!(first.iter().filter(|b| **b != 0).count(), 1, "one bit flipped");
        d.set_faults(DiskFaults::default());
        assert_eq!(f.read_at(0, 2048).await.unwrap(), first, "the flip persists");
        assert!(taints.lock().unwrap().contains("t", 0));
        f.write_at(2048, Bytes::from_static(&[7; 512])).await.unwrap();
        d.set_faults(DiskFaults { flip: 1.0, ..Default::default() });
        for _ in 0..20 {
            f.read_at(2048, 512).await.unwrap();
        }
        d.set_faults(DiskFaults::default());
        assert_eq!(
            f.read_at(2048, 512).await.unwrap(),
            Bytes::from_static(&[7; 512]),
            "unsynced bytes never flip"
        );
    });
}

/// A misdirected write succeeds but lands whole sectors away.
#[test]
fn misdirected_write_lands_elsewhere() {
    run(async {
        let (d, taints) = disk(2);
        let f = synced_file(&d, &[0u8; 8192]).await;
        d.set_faults(DiskFaults { misdirect: 1.0, ..Default::default() });
        f.write_at(4096, Bytes::from_static(&[9; 512])).await.unwrap();
        d.set_faults(DiskFaults::default());
        assert_ne!(f.read_at(4096, 512).await.unwrap(), Bytes::from_static(&[9; 512]));
        assert_eq!(d.counts().misdirect, 1);
        assert!(taints.lock().unwrap().contains("t", 0));
    });
}

/// EIO on fsync drops the dirty data (as Linux does) and counts a loss;
/// EIO on read fails the read only.
#[test]
fn eio() {
    run(async {
        let (d, taints) = disk(3);
        let f = synced_file(&d, b"durable").await;
        f.write_at(7, Bytes::from_static(b" and more")).await.unwrap();
        d.set_faults(DiskFaults { eio_sync: 1.0, ..Default::default() });
        assert!(f.sync_data().await.is_err());
        d.set_faults(DiskFaults { eio_read: 1.0, ..Default::default() });
        assert!(f.read_at(0, 16).await.is_err());
        d.set_faults(DiskFaults::default());
        assert_eq!(f.read_at(0, 16).await.unwrap(), Bytes::from_static(b"durable"));
        assert_eq!(taints.lock().unwrap().losses, 1);
    });
}

/// A crash keeps what was synced; a disk full of data refuses growth.
#[test]
fn crash_and_full_disk() {
    run(async {
        let (d, _) = disk(4);
        let f = synced_file(&d, b"kept").await;
        f.write_at(4, Bytes::from_static(b" maybe")).await.unwrap();
        d.create_dir_all(Path::new("/data/t-1")).await.unwrap();
        d.crash(CrashWeights { keep_all: 0, drop_unsynced: 1, random: 0 });
        assert_eq!(d.list_dirs(Path::new("/data")).await.unwrap(), ["t-0"], "an unsynced mkdir is lost");
        let f = d.open(Path::new(SEGMENT), OpenMode::Existing).await.unwrap();
        assert_eq!(f.read_at(0, 16).await.unwrap(), Bytes::from_static(b"kept"));
        d.fill_up(0).await;
        let err = f.write_at(4, Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        d.unfill();
        f.write_at(4, Bytes::from_static(b"x")).await.unwrap();
    });
}

/// A power loss while a direct-I/O file's synced 4 KiB block is rewritten
/// tears the rewrite per 512-byte sector, not per direct-I/O block (the
/// `unit` failed and misdirected writes use): each sector holds all of its
/// old or all of its new bytes, independently, and across seeds the block
/// is found whole-old, whole-new and mixed.
#[test]
fn crash_tears_a_rewritten_direct_block_per_sector() {
    use ringtail_engine::io::append_buf::AppendBuf;
    let block = |byte: u8| AppendBuf::starting_with(4096, &[byte; 4096]).slice(0..4096);
    let (mut old, mut new, mut mixed) = (0, 0, 0);
    for seed in 0..64 {
        run(async {
            let (d, _) = disk(seed);
            d.create_dir_all(Path::new("/data/t-0")).await.unwrap();
            let f = d.open_direct(Path::new(SEGMENT), OpenMode::Create).await.unwrap();
            assert_eq!(f.write_alignment(), 4096);
            f.write_at(0, block(0xAA)).await.unwrap();
            f.sync_data().await.unwrap();
            for dir in ["/", "/data", "/data/t-0"] {
                d.sync_dir(Path::new(dir)).await.unwrap();
            }
            f.write_at(0, block(0xBB)).await.unwrap();
            d.crash(CrashWeights { keep_all: 0, drop_unsynced: 0, random: 1 });
            let f = d.open_direct(Path::new(SEGMENT), OpenMode::Existing).await.unwrap();
            let bytes = f.read_at(0, 4096).await.unwrap();
            assert_eq!(bytes.len(), 4096);
            let sectors: Vec<u8> = bytes
                .chunks(512)
                .map(|s| {
                    assert!(s.iter().all(|&b| b == s[0]), "seed {seed}: a sector holds old and new bytes");
                    assert!(s[0] == 0xAA || s[0] == 0xBB, "seed {seed}: a sector neither old nor new");
                    s[0]
                })
                .collect();
            match (sectors.contains(&0xAA), sectors.contains(&0xBB)) {
                (true, false) => old += 1,
                (false, true) => new += 1,
                _ => mixed += 1,
            }
        });
    }
    assert!(old > 0 && new > 0 && mixed > 0, "old {old}, new {new}, mixed {mixed}");
}
