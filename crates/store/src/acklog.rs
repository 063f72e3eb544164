//! A durable queue's ack log: which records are settled, and how far delivery got.
//!
//! Settling a message appends a 16-byte entry; the entries are buffered in memory and
//! written by a background flusher every few milliseconds, never fsynced on their own:
//! an ack lost in a crash only means the message is delivered again (at least once), the
//! guarantee RabbitMQ gives. The delivery cursor is logged the same way, so that after a
//! restart messages that had been delivered come back with `redelivered = true`.
//!
//! Entry: `u32 tag, u32 segment, u32 a, u32 b` (little-endian), where tag 1 settles
//! records `a..b` of the segment and tag 2 says the cursor was at record `a`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

const TAG_SETTLED: u32 = 1;
const TAG_CURSOR: u32 = 2;
const ENTRY: usize = 16;
const NO_CURSOR: u64 = u64::MAX;

pub struct AckLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// (segment << 32 | record index) of the delivery cursor; written by the flusher.
    cursor: AtomicU64,
}

struct Inner {
    file: File,
    buf: Vec<u8>,
    /// Bytes in the file, to decide when to compact.
    size: u64,
    logged_cursor: u64,
}

/// What an ack log says after a restart.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Settled ranges per segment.
    pub settled: HashMap<u32, Vec<(u32, u32)>>,
    /// The last logged delivery cursor (segment, record index).
    pub cursor: Option<(u32, u32)>,
}

fn entry(buf: &mut Vec<u8>, tag: u32, seg: u32, a: u32, b: u32) {
    for v in [tag, seg, a, b] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

impl AckLog {
    /// Opens (or creates) the log and reads back what it holds.
    pub fn open(dir: &Path) -> io::Result<(Arc<AckLog>, Recovered)> {
        let path = dir.join("acks");
        let mut rec = Recovered::default();
        let mut size = 0u64;
        if let Ok(mut f) = File::open(&path) {
            let mut raw = Vec::new();
            f.read_to_end(&mut raw)?;
            // A torn last entry (crash mid-write) is ignored.
            let whole = raw.len() / ENTRY * ENTRY;
            size = whole as u64;
            for e in raw[..whole].chunks_exact(ENTRY) {
                let v = |i: usize| u32::from_le_bytes(e[i * 4..i * 4 + 4].try_into().unwrap());
                match v(0) {
                    TAG_SETTLED => rec.settled.entry(v(1)).or_default().push((v(2), v(3))),
                    TAG_CURSOR => rec.cursor = Some((v(1), v(2))),
                    _ => {}
                }
            }
            if whole != raw.len() {
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(whole as u64)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let log = Arc::new(AckLog {
            path,
            inner: Mutex::new(Inner {
                file,
                buf: Vec::new(),
                size,
                logged_cursor: NO_CURSOR,
            }),
            cursor: AtomicU64::new(NO_CURSOR),
        });
        Ok((log, rec))
    }

    pub fn settled(&self, seg: u32, from: u32, to: u32) {
        let mut i = self.inner.lock();
        entry(&mut i.buf, TAG_SETTLED, seg, from, to);
    }

    pub fn set_cursor(&self, seg: u32, idx: u32) {
        self.cursor
            .store((seg as u64) << 32 | idx as u64, Ordering::Relaxed);
    }

    /// Whether the file has grown enough to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        self.inner.lock().size > 64 << 20
    }

    /// Writes what is buffered (and the cursor, if it moved).
    pub fn flush(&self) -> io::Result<()> {
        let mut i = self.inner.lock();
        let c = self.cursor.load(Ordering::Relaxed);
        if c != NO_CURSOR && c != i.logged_cursor {
            i.logged_cursor = c;
            let mut b = std::mem::take(&mut i.buf);
            entry(&mut b, TAG_CURSOR, (c >> 32) as u32, c as u32, 0);
            i.buf = b;
        }
        if i.buf.is_empty() {
            return Ok(());
        }
        let Inner {
            file, buf, size, ..
        } = &mut *i;
        file.write_all(buf)?;
        *size += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// Replaces the log with `ranges` (the settled records of live segments) and the
    /// cursor: written to a temporary file, synced, renamed over the log.
    pub fn compact(&self, ranges: &[(u32, u32, u32)]) -> io::Result<()> {
        let mut i = self.inner.lock();
        let mut b = Vec::with_capacity(ranges.len() * ENTRY + ENTRY);
        for &(seg, a, bb) in ranges {
            entry(&mut b, TAG_SETTLED, seg, a, bb);
        }
        let c = self.cursor.load(Ordering::Relaxed);
        if c != NO_CURSOR {
            entry(&mut b, TAG_CURSOR, (c >> 32) as u32, c as u32, 0);
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&b)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        i.file = OpenOptions::new().append(true).open(&self.path)?;
        i.size = b.len() as u64;
        i.buf.clear();
        i.logged_cursor = c;
        Ok(())
    }
}

/// Writes every registered ack log's buffer every few milliseconds.
#[derive(Default)]
pub struct Flusher {
    logs: Mutex<Vec<Weak<AckLog>>>,
}

impl Flusher {
    pub fn start(interval: Duration) -> Arc<Flusher> {
        let f = Arc::new(Flusher::default());
        let run = Arc::downgrade(&f);
        std::thread::Builder::new()
            .name("warren-acklog".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                let Some(f) = run.upgrade() else { return };
                f.flush_all();
            })
            .expect("ack log thread");
        f
    }

    pub fn register(&self, log: &Arc<AckLog>) {
        self.logs.lock().push(Arc::downgrade(log));
    }

    pub fn flush_all(&self) {
        let logs: Vec<Arc<AckLog>> = {
            let mut v = self.logs.lock();
            v.retain(|w| w.strong_count() > 0);
            v.iter().filter_map(|w| w.upgrade()).collect()
        };
        for l in logs {
            if let Err(e) = l.flush() {
                tracing::warn!(error = %e, path = %l.path.display(), "cannot write ack log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_cursor_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let (log, rec) = AckLog::open(dir.path()).unwrap();
        assert!(rec.settled.is_empty() && rec.cursor.is_none());
        log.settled(1, 0, 1);
        log.settled(1, 5, 9);
        log.set_cursor(2, 3);
        log.flush().unwrap();
        drop(log);
        let (log, rec) = AckLog::open(dir.path()).unwrap();
        assert_eq!(rec.settled[&1], vec![(0, 1), (5, 9)]);
        assert_eq!(rec.cursor, Some((2, 3)));
        log.set_cursor(2, 4);
        log.compact(&[(2, 0, 2)]).unwrap();
        drop(log);
        let (_, rec) = AckLog::open(dir.path()).unwrap();
        assert_eq!(rec.settled.len(), 1);
        assert_eq!(rec.settled[&2], vec![(0, 2)]);
        assert_eq!(rec.cursor, Some((2, 4)));
    }
}
