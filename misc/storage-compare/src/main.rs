//! The measurement behind the choice of the memory broker's on-disk store
//! (docs/design/durable-history.md): redb and fjall under a history-shaped write load.
//!
//! 100 channels, 200-byte payloads, history size 100: each publication inserts
//! (channel, offset) → payload, rewrites the channel's meta and deletes the publication the
//! size limit pushes out. Three ways to make it durable:
//! - one commit with fsync per publication (`sync: always` without concurrency),
//! - 64 publications per commit with one fsync (group commit),
//! - one commit per publication without fsync, an fsync every 5 ms (`sync: interval`).
//!
//! Run: `cargo run --release -- /path/on/the/disk/to/measure` (outside the workspace).

use std::path::Path;
use std::time::Instant;

const CHANNELS: u64 = 100;
const SIZE: u64 = 100;
const PAYLOAD: usize = 200;

const PUBS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("pubs");
const META: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("meta");

fn key(ch: u64, off: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ch.to_be_bytes());
    k[8..].copy_from_slice(&off.to_be_bytes());
    k
}

/// Publication `i`: its channel and offset.
fn slot(i: u64) -> (u64, u64) {
    (i % CHANNELS, i / CHANNELS + 1)
}

fn redb_write(tx: &redb::WriteTransaction, i: u64, payload: &[u8]) {
    let mut pubs = tx.open_table(PUBS).unwrap();
    let mut meta = tx.open_table(META).unwrap();
    let (ch, off) = slot(i);
    pubs.insert(&key(ch, off)[..], payload).unwrap();
    meta.insert(&ch.to_be_bytes()[..], &off.to_be_bytes()[..])
        .unwrap();
    if off > SIZE {
        pubs.remove(&key(ch, off - SIZE)[..]).unwrap();
    }
}

fn fjall_write(
    b: &mut fjall::OwnedWriteBatch,
    ks: &(fjall::Keyspace, fjall::Keyspace),
    i: u64,
    payload: &[u8],
) {
    let (ch, off) = slot(i);
    b.insert(&ks.0, key(ch, off), payload.to_vec());
    b.insert(&ks.1, ch.to_be_bytes(), off.to_be_bytes());
    if off > SIZE {
        b.remove(&ks.0, key(ch, off - SIZE));
    }
}

/// Publications per second with `batch` publications per fsynced commit.
fn redb_batched(dir: &Path, n: u64, batch: u64) -> f64 {
    let db = redb::Database::create(dir.join("redb")).unwrap();
    let payload = vec![7u8; PAYLOAD];
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut tx = db.begin_write().unwrap();
        tx.set_durability(redb::Durability::Immediate).unwrap();
        for _ in 0..batch {
            redb_write(&tx, i, &payload);
            i += 1;
        }
        tx.commit().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn fjall_open(dir: &Path) -> (fjall::Database, (fjall::Keyspace, fjall::Keyspace)) {
    let db = fjall::Database::builder(dir.join("fjall")).open().unwrap();
    let pubs = db
        .keyspace("pubs", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    let meta = db
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    (db, (pubs, meta))
}

fn fjall_batched(dir: &Path, n: u64, batch: u64) -> f64 {
    let (db, ks) = fjall_open(dir);
    let payload = vec![7u8; PAYLOAD];
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut b = db.batch();
        for _ in 0..batch {
            fjall_write(&mut b, &ks, i, &payload);
            i += 1;
        }
        b.commit().unwrap();
        db.persist(fjall::PersistMode::SyncData).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// One commit per publication without fsync, an fsync every 5 ms.
fn redb_interval(dir: &Path, n: u64) -> f64 {
    let db = redb::Database::create(dir.join("redb")).unwrap();
    let payload = vec![7u8; PAYLOAD];
    let t = Instant::now();
    let mut last = Instant::now();
    for i in 0..n {
        let mut tx = db.begin_write().unwrap();
        // redb has no "written but not synced" state that survives a crash of the process:
        // a `None` commit is lost unless an `Immediate` one follows.
        let durable = last.elapsed().as_millis() >= 5;
        let durability = if durable {
            last = Instant::now();
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        tx.set_durability(durability).unwrap();
        redb_write(&tx, i, &payload);
        tx.commit().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn fjall_interval(dir: &Path, n: u64) -> f64 {
    let (db, ks) = fjall_open(dir);
    let payload = vec![7u8; PAYLOAD];
    let t = Instant::now();
    let mut last = Instant::now();
    for i in 0..n {
        let mut b = db.batch();
        fjall_write(&mut b, &ks, i, &payload);
        // Handed to the OS at commit: survives a crash of the process.
        b.commit().unwrap();
        if last.elapsed().as_millis() >= 5 {
            db.persist(fjall::PersistMode::SyncData).unwrap();
            last = Instant::now();
        }
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn fresh(base: &Path, name: &str) -> std::path::PathBuf {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn main() {
    let base = std::path::PathBuf::from(std::env::args().nth(1).expect("a directory"));
    for round in 0..3 {
        let d = fresh(&base, "interval");
        let r = redb_interval(&d, 100_000);
        let f = fjall_interval(&d, 100_000);
        println!(
            "per-publication commit, fsync every 5 ms, round {round}: redb {r:.0}/s fjall {f:.0}/s"
        );
    }
    for (label, n, batch) in [
        ("fsync per publication", 3000u64, 1u64),
        ("64 per fsynced commit", 200_000, 64),
    ] {
        for round in 0..3 {
            let d = fresh(&base, "batched");
            let r = redb_batched(&d, n, batch);
            let f = fjall_batched(&d, n, batch);
            println!("{label}, round {round}: redb {r:.0}/s fjall {f:.0}/s");
        }
    }
    let _ = std::fs::remove_dir_all(base.join("interval"));
    let _ = std::fs::remove_dir_all(base.join("batched"));
}
