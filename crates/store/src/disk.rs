//! The disk-first queue store: a queue is a sequence of segment files read by a cursor.
//!
//! Every message a queue receives is appended to its current segment. Nothing per message
//! is kept in memory: ready messages are the records between the read cursor and the end
//! of the last segment, minus the ones marked settled in a per-segment bitmap (one bit
//! per record). A queue's memory is therefore its segments' bitmaps, the outstanding
//! (delivered, unacked) messages the channels hold, and three bounded buffers:
//! - `tail`: the newest messages, not written yet. A message that must reach the disk (a
//!   persistent one in a durable queue) is written at once; the rest wait here, and are
//!   written only when the tail outgrows its bounds. Transient traffic that consumers keep
//!   up with therefore never touches the disk, and a backlog of any size still costs a
//!   bounded amount of memory. Everything in the tail is newer than everything written.
//! - `cache`: the `Arc<Message>` of recently written records, so a consumer gets the
//!   publisher's message without the record being read back;
//! - `requeued`: messages returned by consumers, ahead of everything else in seq order.
//!
//! A segment is deleted as soon as every record in it is settled. Durable queues also keep
//! an ack log (settled records, delivery cursor) and hand their writes to the group
//! committer; at start-up [`DiskQueueStore::open`] rebuilds the state from the segments
//! and the ack log, truncating what a crash tore.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::acklog::{AckLog, Flusher};
use crate::committer::Committer;
use crate::segment::{self, map_read, read_record, Read, WriteSegment};
use crate::{Envelope, Loc, Message, Pushed, QueueStore, SeqNo};

/// Recently appended messages kept in memory for consumers that keep up.
const CACHE_MESSAGES: usize = 2048;
const CACHE_BYTES: u64 = 4 << 20;
/// The size of a queue's first segment file.
const FIRST_SEGMENT: usize = 64 << 10;
/// Bounds of the unwritten tail; past them its oldest messages are written out.
const TAIL_MESSAGES: usize = 8192;
const TAIL_BYTES: u64 = 4 << 20;

#[derive(Clone)]
pub struct DiskOptions {
    pub segment_size: u32,
    /// Durable queue: keep an ack log, recover after restart, sync persistent messages.
    pub durable: bool,
    pub committer: Option<Arc<Committer>>,
    pub flusher: Option<Arc<Flusher>>,
    /// The broker did not shut down cleanly last time: every recovered message may have
    /// been delivered (the logged cursor may be stale), so all come back redelivered,
    /// as RabbitMQ does after a crash.
    pub after_crash: bool,
    /// Keep the newest messages in memory until the tail bounds are reached (see the
    /// module docs). Off for stores that hold messages for a long time by design
    /// (delayed messages), where memory must not grow with what is pending.
    pub memory_tail: bool,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            segment_size: segment::DEFAULT_SEGMENT_SIZE,
            durable: false,
            committer: None,
            flusher: None,
            after_crash: false,
            memory_tail: true,
        }
    }
}

/// Per-segment bookkeeping.
struct SegMeta {
    /// Records written (or found at recovery).
    count: u32,
    settled: u32,
    /// One bit per record: settled.
    bits: Vec<u64>,
}

impl SegMeta {
    fn new() -> SegMeta {
        SegMeta {
            count: 0,
            settled: 0,
            bits: Vec::new(),
        }
    }

    fn is_settled(&self, idx: u32) -> bool {
        self.bits
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    /// Marks a record settled; false if it already was.
    fn settle(&mut self, idx: u32) -> bool {
        let w = idx as usize / 64;
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        let bit = 1u64 << (idx % 64);
        if self.bits[w] & bit != 0 {
            return false;
        }
        self.bits[w] |= bit;
        self.settled += 1;
        true
    }

    /// Settled records as ranges (for ack log compaction).
    fn ranges(&self, seg: u32, out: &mut Vec<(u32, u32, u32)>) {
        let mut start: Option<u32> = None;
        for i in 0..self.count {
            match (self.is_settled(i), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    out.push((seg, s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((seg, s, self.count));
        }
    }
}

/// The read position: the next record to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Cursor {
    seg: u32,
    idx: u32,
    offset: u32,
}

pub struct DiskQueueStore {
    dir: PathBuf,
    opts: DiskOptions,
    segs: BTreeMap<u32, SegMeta>,
    write: Option<WriteSegment>,
    /// The read mapping of the cursor's segment.
    reader: Option<(u32, Bytes)>,
    cursor: Cursor,
    requeued: BTreeMap<SeqNo, Envelope>,
    cache: VecDeque<Envelope>,
    cache_bytes: u64,
    /// Not yet written (loc.seg == 0), newest messages, in seq order.
    tail: VecDeque<Envelope>,
    tail_bytes: u64,
    /// Where tail messages with a TTL went when written out (their expiry entries still
    /// name the in-memory location).
    moved: std::collections::HashMap<SeqNo, Loc>,
    next_seq: SeqNo,
    ready: u64,
    ready_bytes: u64,
    /// Records before this position had been delivered before a restart.
    redeliver_below: (u32, u32),
    acklog: Option<Arc<AckLog>>,
    recovered_expiries: Vec<(u64, SeqNo, Loc)>,
    /// The highest segment id ever used here: ids are never reused, because the ack log
    /// may still hold entries for a deleted segment's id.
    last_segment_id: u32,
}

impl DiskQueueStore {
    /// Opens the store in `dir`, recovering what a durable queue left there. A
    /// non-durable store starts empty (its directory is wiped).
    pub fn open(dir: &Path, opts: DiskOptions) -> io::Result<DiskQueueStore> {
        if !opts.durable && dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        let mut s = DiskQueueStore {
            dir: dir.to_path_buf(),
            segs: BTreeMap::new(),
            write: None,
            reader: None,
            cursor: Cursor::default(),
            requeued: BTreeMap::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            moved: std::collections::HashMap::new(),
            next_seq: 1,
            ready: 0,
            ready_bytes: 0,
            redeliver_below: (0, 0),
            acklog: None,
            recovered_expiries: Vec::new(),
            last_segment_id: 0,
            opts,
        };
        if s.opts.durable {
            s.recover()?;
        }
        Ok(s)
    }

    fn recover(&mut self) -> io::Result<()> {
        let (log, acked) = AckLog::open(&self.dir)?;
        if let Some(f) = &self.opts.flusher {
            f.register(&log);
        }
        self.acklog = Some(log);
        let mut ids: Vec<u32> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        self.last_segment_id = ids
            .iter()
            .copied()
            .chain(acked.settled.keys().copied())
            .chain(acked.cursor.map(|c| c.0))
            .max()
            .unwrap_or(0);
        let (mut damaged, mut torn) = (0u64, 0u64);
        for id in ids {
            let mut meta = SegMeta::new();
            if let Some(ranges) = acked.settled.get(&id) {
                for &(a, b) in ranges {
                    for i in a..b {
                        meta.settle(i);
                    }
                }
            }
            let seg = map_read(&self.dir, id)?;
            let mut offset = 0usize;
            let mut idx = 0u32;
            loop {
                match read_record(&seg, offset) {
                    Read::End => break,
                    Read::Torn => {
                        torn += 1;
                        tracing::warn!(
                            dir = %self.dir.display(), segment = id, offset,
                            "torn record at the end of a segment: the rest of it is ignored"
                        );
                        break;
                    }
                    Read::Damaged { len } => {
                        damaged += 1;
                        tracing::warn!(
                            dir = %self.dir.display(), segment = id, offset,
                            "damaged record (checksum mismatch) dropped"
                        );
                        meta.settle(idx);
                        offset += len as usize;
                    }
                    Read::Record(r) => {
                        // Transient messages do not survive a restart, even in a durable
                        // queue.
                        if !r.persistent {
                            meta.settle(idx);
                        } else if !meta.is_settled(idx) {
                            self.ready += 1;
                            self.ready_bytes += r.body.len() as u64;
                            if let Some(at) = r.expires_at {
                                self.recovered_expiries.push((
                                    at,
                                    r.seq,
                                    Loc {
                                        seg: id,
                                        idx,
                                        offset: offset as u32,
                                        len: r.len,
                                        part: 0,
                                    },
                                ));
                            }
                        }
                        self.next_seq = self.next_seq.max(r.seq + 1);
                        offset += r.len as usize;
                    }
                }
                idx += 1;
            }
            meta.count = idx;
            // Records found beyond what the ack log knew are settled only by bits set
            // above; bits for indexes past `count` (a torn tail) are meaningless.
            meta.settled = (0..meta.count).filter(|&i| meta.is_settled(i)).count() as u32;
            if meta.settled == meta.count {
                let _ = fs::remove_file(segment::segment_path(&self.dir, id));
            } else {
                self.segs.insert(id, meta);
            }
        }
        if damaged + torn > 0 {
            tracing::warn!(dir = %self.dir.display(), damaged, torn, "queue recovered with damaged records dropped");
        }
        if let Some(&first) = self.segs.keys().next() {
            self.cursor = Cursor {
                seg: first,
                idx: 0,
                offset: 0,
            };
        }
        if self.opts.after_crash {
            self.redeliver_below = (u32::MAX, u32::MAX);
        } else if let Some(c) = acked.cursor {
            self.redeliver_below = c;
        }
        self.compact_acklog();
        Ok(())
    }

    fn next_segment_id(&mut self) -> u32 {
        self.last_segment_id += 1;
        self.last_segment_id
    }

    /// Makes sure there is a write segment with room for `size` bytes.
    fn ensure_room(&mut self, size: usize) -> io::Result<()> {
        let fits = self
            .write
            .as_ref()
            .is_some_and(|w| w.pos + size + 4 <= w.capacity());
        if fits {
            return Ok(());
        }
        let id = self.next_segment_id();
        // Segments grow: a queue's first is small, each next one twice the last, up to
        // the configured size. Thousands of short queues then cost kilobytes of disk each,
        // not a full segment.
        let prev = self.write.as_ref().map_or(0, |w| w.capacity());
        let grown = if prev == 0 { FIRST_SEGMENT } else { prev * 2 };
        let cap = grown.min(self.opts.segment_size as usize).max(size + 4);
        let w = WriteSegment::create(&self.dir, id, cap)?;
        if self.opts.durable {
            // The new file's directory entry must be durable before any confirm that
            // depends on it.
            crate::definitions::sync_dir(&self.dir)?;
        }
        if let Some(old) = self.write.take() {
            let old_id = old.id;
            drop(old);
            self.maybe_delete(old_id);
        }
        self.segs.insert(id, SegMeta::new());
        if self.segs.len() == 1 || self.cursor_at_end() {
            // An empty queue reads from the new segment onwards.
            if self.segs.range(..id).all(|(_, m)| m.settled == m.count) {
                self.cursor = Cursor {
                    seg: id,
                    idx: 0,
                    offset: 0,
                };
            }
        }
        self.write = Some(w);
        Ok(())
    }

    fn cursor_at_end(&self) -> bool {
        match self.segs.get(&self.cursor.seg) {
            None => true,
            Some(m) => {
                self.cursor.idx >= m.count
                    && self.segs.range(self.cursor.seg + 1..).next().is_none()
            }
        }
    }

    /// Deletes a segment whose records are all settled (never the write segment).
    fn maybe_delete(&mut self, id: u32) {
        if self.write.as_ref().is_some_and(|w| w.id == id) {
            return;
        }
        let done = self.segs.get(&id).is_some_and(|m| m.settled >= m.count);
        if !done {
            return;
        }
        self.segs.remove(&id);
        if self.reader.as_ref().is_some_and(|(r, _)| *r == id) {
            self.reader = None;
        }
        if let Err(e) = fs::remove_file(segment::segment_path(&self.dir, id)) {
            tracing::warn!(error = %e, dir = %self.dir.display(), segment = id, "cannot delete a settled segment");
        }
    }

    fn settle_loc(&mut self, loc: Loc) {
        let Some(m) = self.segs.get_mut(&loc.seg) else {
            return;
        };
        if !m.settle(loc.idx) {
            return;
        }
        if let Some(log) = &self.acklog {
            log.settled(loc.seg, loc.idx, loc.idx + 1);
        }
        if m.settled >= m.count {
            self.maybe_delete(loc.seg);
        }
    }

    /// The bytes of segment `id`, mapped for reading.
    fn segment_bytes(&mut self, id: u32) -> io::Result<Bytes> {
        if let Some((r, b)) = &self.reader {
            if *r == id {
                return Ok(b.clone());
            }
        }
        let b = map_read(&self.dir, id)?;
        self.reader = Some((id, b.clone()));
        Ok(b)
    }

    /// Moves the cursor to the next unsettled record; false at the end of the queue.
    fn settle_cursor(&mut self) -> bool {
        loop {
            let Some(m) = self.segs.get(&self.cursor.seg) else {
                match self.segs.range(self.cursor.seg..).next() {
                    Some((&id, _)) => {
                        self.cursor = Cursor {
                            seg: id,
                            idx: 0,
                            offset: 0,
                        };
                        continue;
                    }
                    None => return false,
                }
            };
            if self.cursor.idx >= m.count {
                let is_write = self.write.as_ref().is_some_and(|w| w.id == self.cursor.seg);
                if is_write {
                    return false;
                }
                let next = self
                    .segs
                    .range(self.cursor.seg + 1..)
                    .next()
                    .map(|(&id, _)| id);
                let passed = self.cursor.seg;
                self.reader = None;
                match next {
                    Some(id) => {
                        self.cursor = Cursor {
                            seg: id,
                            idx: 0,
                            offset: 0,
                        };
                        self.maybe_delete(passed);
                        continue;
                    }
                    None => return false,
                }
            }
            if !m.is_settled(self.cursor.idx) {
                return true;
            }
            // Skip a settled record: only its length is needed.
            let len = match self.record_len_at_cursor() {
                Some(l) => l,
                None => return false,
            };
            self.cursor.idx += 1;
            self.cursor.offset += len;
        }
    }

    fn record_len_at_cursor(&mut self) -> Option<u32> {
        if let Some(e) = self
            .cache
            .iter()
            .find(|e| e.loc.seg == self.cursor.seg && e.loc.idx == self.cursor.idx)
        {
            return Some(e.loc.len);
        }
        let seg = self.segment_bytes(self.cursor.seg).ok()?;
        let o = self.cursor.offset as usize;
        let len = u32::from_le_bytes(seg.get(o..o + 4)?.try_into().ok()?);
        (len != 0).then_some(len + 4)
    }

    /// Drops cache entries the cursor has passed.
    fn trim_cache(&mut self) {
        while let Some(front) = self.cache.front() {
            if (front.loc.seg, front.loc.idx) < (self.cursor.seg, self.cursor.idx) {
                let e = self.cache.pop_front().unwrap();
                self.cache_bytes -= e.msg.size();
            } else {
                break;
            }
        }
    }

    fn take_at_cursor(&mut self) -> Option<Envelope> {
        self.trim_cache();
        let here = (self.cursor.seg, self.cursor.idx);
        let env = if self
            .cache
            .front()
            .is_some_and(|e| (e.loc.seg, e.loc.idx) == here)
        {
            let e = self.cache.pop_front().unwrap();
            self.cache_bytes -= e.msg.size();
            e
        } else {
            let seg = self.segment_bytes(self.cursor.seg).ok()?;
            match read_record(&seg, self.cursor.offset as usize) {
                Read::Record(r) => {
                    let loc = Loc {
                        seg: self.cursor.seg,
                        idx: self.cursor.idx,
                        offset: self.cursor.offset,
                        len: r.len,
                        part: 0,
                    };
                    let (seq, expires_at) = (r.seq, r.expires_at);
                    Envelope {
                        seq,
                        msg: Arc::new(r.into_message()),
                        redelivered: here < self.redeliver_below,
                        expires_at,
                        loc,
                        delivery_count: 0,
                    }
                }
                _ => {
                    // Recovery settled every unreadable record, so this is a bug or the
                    // file changed under us: stop reading rather than loop.
                    tracing::error!(dir = %self.dir.display(), segment = here.0, index = here.1, "unreadable record at the read cursor");
                    return None;
                }
            }
        };
        self.cursor.idx += 1;
        self.cursor.offset += env.loc.len;
        if let Some(log) = &self.acklog {
            log.set_cursor(self.cursor.seg, self.cursor.idx);
        }
        Some(env)
    }

    /// Appends one record; returns where, and the commit epoch if it must be synced.
    fn write_record(
        &mut self,
        seq: SeqNo,
        expires_at: Option<u64>,
        msg: &Message,
    ) -> io::Result<(Loc, Option<u64>)> {
        self.ensure_room(segment::record_size(msg))?;
        let w = self.write.as_mut().expect("ensure_room made a segment");
        let (offset, len) = w
            .append(seq, expires_at, msg)
            .expect("ensure_room made room");
        let id = w.id;
        let meta = self.segs.get_mut(&id).expect("write segment has meta");
        let loc = Loc {
            seg: id,
            idx: meta.count,
            offset,
            len,
            part: 0,
        };
        meta.count += 1;
        let sync = match (&self.opts.committer, self.opts.durable && msg.persistent) {
            (Some(c), true) => Some(c.mark(&w.file)),
            _ => None,
        };
        Ok((loc, sync))
    }

    fn cache_written(&mut self, env: Envelope) {
        if self.cache.len() < CACHE_MESSAGES && self.cache_bytes + env.msg.size() <= CACHE_BYTES {
            self.cache_bytes += env.msg.size();
            self.cache.push_back(env);
        }
    }

    /// Writes the oldest tail messages until at most `keep` messages of at most
    /// `keep_bytes` remain unwritten.
    fn flush_tail(&mut self, keep: usize, keep_bytes: u64) -> io::Result<()> {
        while self.tail.len() > keep || (self.tail_bytes > keep_bytes && !self.tail.is_empty()) {
            let mut env = self.tail.pop_front().expect("len > keep");
            let (loc, _) = match self.write_record(env.seq, env.expires_at, &env.msg) {
                Ok(r) => r,
                Err(e) => {
                    self.tail.push_front(env);
                    return Err(e);
                }
            };
            self.tail_bytes -= env.msg.size();
            if env.expires_at.is_some() {
                self.moved.insert(env.seq, loc);
            }
            env.loc = loc;
            self.cache_written(env);
        }
        Ok(())
    }

    fn compact_acklog(&mut self) {
        let Some(log) = &self.acklog else { return };
        let mut ranges = Vec::new();
        for (&id, m) in &self.segs {
            m.ranges(id, &mut ranges);
        }
        if let Err(e) = log.compact(&ranges) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot compact the ack log");
        }
    }
}

impl QueueStore for DiskQueueStore {
    fn push(&mut self, msg: Arc<Message>, expires_at: Option<u64>) -> io::Result<Pushed> {
        let seq = self.next_seq;
        let must_write = (self.opts.durable && msg.persistent) || !self.opts.memory_tail;
        let size = msg.size();
        let pushed = if must_write {
            // Older tail messages go first, to keep everything written older than the tail.
            self.flush_tail(0, 0)?;
            let (loc, sync) = self.write_record(seq, expires_at, &msg)?;
            self.cache_written(Envelope {
                seq,
                msg,
                redelivered: false,
                expires_at,
                loc,
                delivery_count: 0,
            });
            Pushed { seq, loc, sync }
        } else {
            self.tail_bytes += size;
            self.tail.push_back(Envelope {
                seq,
                msg,
                redelivered: false,
                expires_at,
                loc: Loc::default(),
                delivery_count: 0,
            });
            if self.tail.len() > TAIL_MESSAGES || self.tail_bytes > TAIL_BYTES {
                // Both halves: a count alone would let a few thousand large messages
                // stay in memory.
                self.flush_tail(TAIL_MESSAGES / 2, TAIL_BYTES / 2)?;
            }
            Pushed {
                seq,
                loc: Loc::default(),
                sync: None,
            }
        };
        self.next_seq += 1;
        self.ready += 1;
        self.ready_bytes += size;
        if self.acklog.as_ref().is_some_and(|l| l.wants_compaction()) {
            self.compact_acklog();
        }
        Ok(pushed)
    }

    fn pop(&mut self) -> Option<Envelope> {
        let env = match self.requeued.pop_first() {
            Some((_, env)) => env,
            None if self.settle_cursor() => self.take_at_cursor()?,
            None => {
                let e = self.tail.pop_front()?;
                self.tail_bytes -= e.msg.size();
                e
            }
        };
        self.ready -= 1;
        self.ready_bytes -= env.msg.size();
        Some(env)
    }

    fn peek_expiry(&mut self) -> Option<Option<u64>> {
        if let Some((_, e)) = self.requeued.first_key_value() {
            return Some(e.expires_at);
        }
        if !self.settle_cursor() {
            return self.tail.front().map(|e| e.expires_at);
        }
        self.trim_cache();
        if let Some(e) = self.cache.front() {
            if (e.loc.seg, e.loc.idx) == (self.cursor.seg, self.cursor.idx) {
                return Some(e.expires_at);
            }
        }
        let seg = self.segment_bytes(self.cursor.seg).ok()?;
        let o = self.cursor.offset as usize + segment::RECORD_HEADER + 8;
        let at = u64::from_le_bytes(seg.get(o..o + 8)?.try_into().ok()?);
        Some((at != 0).then_some(at))
    }

    fn remove(&mut self, seq: SeqNo, loc: Loc) -> Option<Envelope> {
        if let Some(env) = self.requeued.remove(&seq) {
            self.ready -= 1;
            self.ready_bytes -= env.msg.size();
            return Some(env);
        }
        let loc = if loc.seg == 0 {
            match self.tail.binary_search_by_key(&seq, |e| e.seq) {
                Ok(i) => {
                    let env = self.tail.remove(i).expect("found");
                    self.tail_bytes -= env.msg.size();
                    self.ready -= 1;
                    self.ready_bytes -= env.msg.size();
                    return Some(env);
                }
                // Written out since it was pushed.
                Err(_) => self.moved.remove(&seq)?,
            }
        } else {
            loc
        };
        // Only a record still ahead of the cursor and unsettled is ready.
        if (loc.seg, loc.idx) < (self.cursor.seg, self.cursor.idx) {
            return None;
        }
        if self
            .segs
            .get(&loc.seg)
            .is_none_or(|m| m.is_settled(loc.idx))
        {
            return None;
        }
        let env = match self.cache.iter().position(|e| e.seq == seq) {
            Some(i) => {
                let e = self.cache.remove(i).unwrap();
                self.cache_bytes -= e.msg.size();
                e
            }
            None => {
                let seg = map_read(&self.dir, loc.seg).ok()?;
                let Read::Record(r) = read_record(&seg, loc.offset as usize) else {
                    return None;
                };
                let expires_at = r.expires_at;
                Envelope {
                    seq,
                    msg: Arc::new(r.into_message()),
                    redelivered: (loc.seg, loc.idx) < self.redeliver_below,
                    expires_at,
                    loc,
                    delivery_count: 0,
                }
            }
        };
        self.ready -= 1;
        self.ready_bytes -= env.msg.size();
        // Marking it settled makes the cursor skip it; the caller settles it for good.
        if let Some(m) = self.segs.get_mut(&loc.seg) {
            m.settle(loc.idx);
            if let Some(log) = &self.acklog {
                log.settled(loc.seg, loc.idx, loc.idx + 1);
            }
        }
        Some(env)
    }

    fn settle(&mut self, env: &Envelope) {
        if env.loc.seg != 0 {
            self.settle_loc(env.loc);
        }
        if env.expires_at.is_some() {
            self.moved.remove(&env.seq);
        }
    }

    fn requeue(&mut self, env: Envelope) {
        self.ready += 1;
        self.ready_bytes += env.msg.size();
        self.requeued.insert(env.seq, env);
    }

    fn purge(&mut self) -> u64 {
        let n = self.ready;
        let requeued = std::mem::take(&mut self.requeued);
        for (_, env) in requeued {
            self.settle_loc(env.loc);
        }
        self.cache.clear();
        self.cache_bytes = 0;
        self.tail.clear();
        self.tail_bytes = 0;
        self.moved.clear();
        let start = self.cursor;
        let ids: Vec<u32> = self.segs.range(start.seg..).map(|(&id, _)| id).collect();
        for id in ids {
            let from = if id == start.seg { start.idx } else { 0 };
            let Some(m) = self.segs.get_mut(&id) else {
                continue;
            };
            let count = m.count;
            for i in from..count {
                m.settle(i);
            }
            if let Some(log) = &self.acklog {
                if from < count {
                    log.settled(id, from, count);
                }
            }
            self.maybe_delete(id);
        }
        // The cursor moves to the end of the queue.
        match &self.write {
            Some(w) => {
                let count = self.segs.get(&w.id).map_or(0, |m| m.count);
                self.cursor = Cursor {
                    seg: w.id,
                    idx: count,
                    offset: w.pos as u32,
                };
            }
            None => {
                if let Some((&id, m)) = self.segs.iter().next_back() {
                    self.cursor = Cursor {
                        seg: id + 1,
                        idx: 0,
                        offset: 0,
                    };
                    let _ = m;
                }
            }
        }
        self.reader = None;
        self.ready = 0;
        self.ready_bytes = 0;
        n
    }

    fn ready_count(&self) -> u64 {
        self.ready
    }

    fn ready_bytes(&self) -> u64 {
        self.ready_bytes
    }

    fn recovered_expiries(&mut self) -> Vec<(u64, SeqNo, Loc)> {
        std::mem::take(&mut self.recovered_expiries)
    }

    fn destroy(&mut self) {
        self.write = None;
        self.reader = None;
        self.cache.clear();
        self.tail.clear();
        self.requeued.clear();
        self.acklog = None;
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(error = %e, dir = %self.dir.display(), "cannot remove a deleted queue's files");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_amqp_codec::{BasicProperties, PropertiesView};

    fn msg(body: &str, persistent: bool) -> Arc<Message> {
        let props = BasicProperties {
            delivery_mode: Some(if persistent { 2 } else { 1 }),
            ..Default::default()
        }
        .to_bytes();
        let view = PropertiesView::parse(&props).unwrap();
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            props,
            &view,
            Bytes::copy_from_slice(body.as_bytes()),
        ))
    }

    fn durable(seg: u32) -> DiskOptions {
        DiskOptions {
            segment_size: seg,
            durable: true,
            committer: None,
            flusher: None,
            after_crash: false,
            memory_tail: true,
        }
    }

    fn bodies(s: &mut DiskQueueStore) -> Vec<(String, bool)> {
        std::iter::from_fn(|| s.pop())
            .map(|e| {
                (
                    String::from_utf8(e.msg.body.to_vec()).unwrap(),
                    e.redelivered,
                )
            })
            .collect()
    }

    #[test]
    fn fifo_across_segments_and_settled_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), durable(256)).unwrap();
        for i in 0..20 {
            s.push(msg(&format!("m{i}"), true), None).unwrap();
        }
        assert_eq!(s.ready_count(), 20);
        let segs_before = s.segs.len();
        assert!(segs_before > 2);
        let mut got = Vec::new();
        while let Some(e) = s.pop() {
            got.push(String::from_utf8(e.msg.body.to_vec()).unwrap());
            s.settle(&e);
        }
        assert_eq!(got, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
        assert!(
            s.segs.len() <= 1,
            "settled segments remain: {}",
            s.segs.len()
        );
    }

    #[test]
    fn reads_from_disk_when_the_cache_overflows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), durable(1 << 20)).unwrap();
        let n = CACHE_MESSAGES + 100;
        for i in 0..n {
            s.push(msg(&format!("{i}"), true), None).unwrap();
        }
        let got: Vec<usize> = std::iter::from_fn(|| s.pop())
            .map(|e| std::str::from_utf8(&e.msg.body).unwrap().parse().unwrap())
            .collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn recovery_keeps_persistent_unsettled_and_marks_delivered_as_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::default();
        {
            let mut o = durable(4096);
            o.flusher = None;
            let mut s = DiskQueueStore::open(dir.path(), o).unwrap();
            for (b, p) in [
                ("a", true),
                ("t", false),
                ("b", true),
                ("c", true),
                ("d", true),
            ] {
                s.push(msg(b, p), None).unwrap();
            }
            let a = s.pop().unwrap();
            s.settle(&a); // acked
            let _t = s.pop().unwrap(); // transient, delivered
            let _b = s.pop().unwrap(); // delivered, never acked
            let log = s.acklog.clone().unwrap();
            flusher.register(&log);
            flusher.flush_all();
        }
        let mut s = DiskQueueStore::open(dir.path(), durable(4096)).unwrap();
        assert_eq!(s.ready_count(), 3);
        assert_eq!(
            bodies(&mut s),
            vec![("b".into(), true), ("c".into(), false), ("d".into(), false)]
        );
    }

    #[test]
    fn requeue_goes_first_in_seq_order_and_remove_takes_from_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), DiskOptions::default()).unwrap();
        let mut locs = Vec::new();
        for b in ["a", "b", "c", "d"] {
            locs.push(s.push(msg(b, false), None).unwrap());
        }
        let a = s.pop().unwrap();
        let b = s.pop().unwrap();
        s.requeue(b);
        s.requeue(a);
        let c = s.remove(locs[2].seq, locs[2].loc).unwrap();
        assert_eq!(&c.msg.body[..], b"c");
        assert_eq!(s.ready_count(), 3);
        let got: Vec<String> = bodies(&mut s).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, vec!["a", "b", "d"]);
    }

    #[test]
    fn purge_settles_everything_ready_but_not_outstanding() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), durable(512)).unwrap();
        for i in 0..30 {
            s.push(msg(&format!("{i}"), true), None).unwrap();
        }
        let out = s.pop().unwrap();
        assert_eq!(s.purge(), 29);
        assert_eq!(s.ready_count(), 0);
        assert!(s.pop().is_none());
        s.push(msg("after", true), None).unwrap();
        assert_eq!(bodies(&mut s), vec![("after".into(), false)]);
        s.requeue(out);
        assert_eq!(s.ready_count(), 1);
    }

    #[test]
    fn a_long_transient_backlog_spills_to_disk_in_order_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), DiskOptions::default()).unwrap();
        let n = 3 * TAIL_MESSAGES;
        let mid = n / 3;
        let mut locs = Vec::new();
        for i in 0..n {
            // Only messages with a TTL are ever removed from the middle.
            let ttl = (i == mid).then_some(u64::MAX);
            locs.push(s.push(msg(&format!("{i}"), false), ttl).unwrap());
            assert!(s.tail.len() <= TAIL_MESSAGES);
        }
        assert!(!s.segs.is_empty(), "the backlog never reached the disk");
        // Take one out of the middle by its original (in-memory) location.
        let gone = s.remove(locs[mid].seq, locs[mid].loc).unwrap();
        assert_eq!(
            std::str::from_utf8(&gone.msg.body).unwrap(),
            mid.to_string()
        );
        s.push(msg("last", false), None).unwrap();
        let got: Vec<String> = bodies(&mut s).into_iter().map(|(b, _)| b).collect();
        let mut want: Vec<String> = (0..n)
            .filter(|&i| i != mid)
            .map(|i| i.to_string())
            .collect();
        want.push("last".into());
        assert_eq!(got, want);
    }

    #[test]
    fn a_backlog_of_large_messages_keeps_the_tail_within_its_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), DiskOptions::default()).unwrap();
        let body = "x".repeat(64 << 10);
        let n = 4 * (TAIL_BYTES / (64 << 10)) as usize;
        for i in 0..n {
            s.push(msg(&format!("{i:08}{body}"), false), None).unwrap();
            assert!(s.tail_bytes <= TAIL_BYTES + (64 << 10) + 8);
            assert!(s.cache_bytes <= CACHE_BYTES);
        }
        let got = bodies(&mut s);
        assert_eq!(got.len(), n);
        for (i, (b, _)) in got.iter().enumerate() {
            assert_eq!(&b[..8], format!("{i:08}"));
        }
    }

    #[test]
    fn transient_messages_that_are_consumed_at_once_are_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskQueueStore::open(dir.path(), DiskOptions::default()).unwrap();
        for i in 0..1000 {
            s.push(msg(&format!("{i}"), false), None).unwrap();
            let e = s.pop().unwrap();
            s.settle(&e);
        }
        assert!(s.segs.is_empty() && s.write.is_none());
    }

    #[test]
    fn segment_ids_are_not_reused_after_a_drained_restart() {
        // A drained queue deletes its segments; new ones must not take their ids, or the
        // ack log's entries for the old ones would settle the new records at recovery.
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::default();
        let open = || DiskQueueStore::open(dir.path(), durable(256)).unwrap();
        {
            let mut s = open();
            for i in 0..10 {
                s.push(msg(&format!("old{i}"), true), None).unwrap();
            }
        }
        {
            let mut s = open();
            flusher.register(s.acklog.as_ref().unwrap());
            while let Some(e) = s.pop() {
                s.settle(&e);
            }
            for i in 0..10 {
                s.push(msg(&format!("new{i}"), true), None).unwrap();
            }
            flusher.flush_all();
        }
        let mut s = open();
        let got: Vec<String> = bodies(&mut s).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, (0..10).map(|i| format!("new{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn damaged_and_torn_records_are_dropped_at_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let locs: Vec<Pushed> = {
            let mut s = DiskQueueStore::open(dir.path(), durable(1 << 16)).unwrap();
            ["one", "two", "three"]
                .iter()
                .map(|b| s.push(msg(b, true), None).unwrap())
                .collect()
        };
        let path = segment::segment_path(dir.path(), locs[0].loc.seg);
        let mut raw = fs::read(&path).unwrap();
        // Flip a body byte of "two"; tear "three" by making its length run off the end.
        let two_end = (locs[1].loc.offset + locs[1].loc.len) as usize;
        raw[two_end - 1] ^= 0x55;
        let t = locs[2].loc.offset as usize;
        raw[t..t + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &raw).unwrap();
        let mut s = DiskQueueStore::open(dir.path(), durable(1 << 16)).unwrap();
        let got: Vec<String> = bodies(&mut s).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, vec!["one"]);
    }
}

#[cfg(test)]
mod model_tests {
    //! The disk store must behave exactly like the in-memory reference store under any
    //! sequence of operations.
    use super::*;
    use crate::memory::MemoryQueueStore;
    use warren_amqp_codec::{BasicProperties, PropertiesView};

    fn msg(i: u64) -> Arc<Message> {
        let props = BasicProperties {
            delivery_mode: Some(2),
            ..Default::default()
        }
        .to_bytes();
        let view = PropertiesView::parse(&props).unwrap();
        let body = format!("m{i}").repeat((i % 7) as usize + 1);
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            props,
            &view,
            Bytes::from(body),
        ))
    }

    /// A small deterministic PRNG (xorshift) so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn matches_the_memory_store_under_random_operations() {
        for seed in 1..20u64 {
            let dir = tempfile::tempdir().unwrap();
            let opts = DiskOptions {
                segment_size: 512,
                durable: seed % 2 == 0,
                ..Default::default()
            };
            let mut d = DiskQueueStore::open(dir.path(), opts).unwrap();
            let mut m = MemoryQueueStore::new();
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut out_d: Vec<Envelope> = Vec::new();
            let mut out_m: Vec<Envelope> = Vec::new();
            let mut n = 0u64;
            for step in 0..2000 {
                match rng.next() % 10 {
                    0..=3 => {
                        let k = rng.next() % 5 + 1;
                        for _ in 0..k {
                            d.push(msg(n), None).unwrap();
                            m.push(msg(n), None).unwrap();
                            n += 1;
                        }
                    }
                    4..=6 => {
                        let (a, b) = (d.pop(), m.pop());
                        assert_eq!(
                            a.as_ref().map(|e| e.msg.body.clone()),
                            b.as_ref().map(|e| e.msg.body.clone()),
                            "seed {seed} step {step}: pop differs"
                        );
                        if let (Some(a), Some(b)) = (a, b) {
                            out_d.push(a);
                            out_m.push(b);
                        }
                    }
                    7 | 8 if !out_d.is_empty() => {
                        let i = (rng.next() as usize) % out_d.len();
                        let (a, b) = (out_d.swap_remove(i), out_m.swap_remove(i));
                        d.settle(&a);
                        m.settle(&b);
                    }
                    9 if !out_d.is_empty() => {
                        let i = (rng.next() as usize) % out_d.len();
                        let (mut a, mut b) = (out_d.swap_remove(i), out_m.swap_remove(i));
                        a.redelivered = true;
                        b.redelivered = true;
                        d.requeue(a);
                        m.requeue(b);
                    }
                    _ => {}
                }
                assert_eq!(
                    d.ready_count(),
                    m.ready_count(),
                    "seed {seed} step {step}: count"
                );
                assert_eq!(
                    d.ready_bytes(),
                    m.ready_bytes(),
                    "seed {seed} step {step}: bytes"
                );
            }
        }
    }
}
