//! Stream logs: the storage of stream queues, an append-only log of messages that
//! consumption never removes.
//!
//! A stream is a sequence of [`segment`](crate::segment) files, the same checksummed
//! record format queues use, with the record's sequence number holding the message's
//! *offset* (0, 1, 2, … for the stream's life) and its expiry field holding the time it
//! was appended (ms since the epoch), which `x-stream-offset` timestamps and `x-max-age`
//! work on. Nothing per message is kept in memory: per segment the log knows its first
//! and next offset, its first and last timestamp and its size, which is enough to seek to
//! an offset or a time with one scan of one segment.
//!
//! Readers are [`Cursor`]s: each consumer has its own, positioned anywhere in the log,
//! and reads records as slices of a read-only mapping of their segment (a replay copies
//! nothing), or borrows them ([`StreamLog::read_view`]: not even a reference count).
//! Checksums are verified once, when a segment is recovered at open; a reader then
//! trusts what this process wrote or verified, and only re-verifies in a recovered
//! segment that had damaged records (which it skips, as recovery did). Retention removes whole segments from the front, never the one being
//! written, when the log is over `max_bytes` or a segment's newest message is older than
//! `max_age`, evaluated when a segment fills up, as RabbitMQ does.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::committer::Committer;
use crate::segment::{
    self, locate, map_read, read_record, Layout, Located, Read, Record, RecordView, WriteSegment,
};
use crate::Message;

/// RabbitMQ's default `x-stream-max-segment-size-bytes` is 500 MB; Warren preallocates
/// segments, so its default is smaller (retention granularity is one segment).
pub const DEFAULT_STREAM_SEGMENT: u64 = 64 << 20;
/// The largest segment Warren creates (the record format addresses a segment with u32).
const MAX_SEGMENT: u64 = 1 << 31;

#[derive(Clone, Default)]
pub struct StreamOptions {
    /// Size of new segments (`x-stream-max-segment-size-bytes`).
    pub segment_bytes: u64,
    /// Syncs appends; a confirm for an append waits for its round.
    pub committer: Option<Arc<Committer>>,
}

/// Retention limits; `None` keeps everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_bytes: Option<u64>,
    /// Milliseconds.
    pub max_age: Option<u64>,
}

/// Where a new reader starts (`x-stream-offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    First,
    /// The last message in the log (or the next one if the log is empty).
    Last,
    /// Only messages appended from now on.
    Next,
    Offset(u64),
    /// The first message appended at or after this time (ms since the epoch).
    Timestamp(u64),
}

#[derive(Debug)]
struct Seg {
    id: u32,
    first: u64,
    /// One past the last offset in this segment.
    next: u64,
    first_ts: u64,
    last_ts: u64,
    /// Bytes of records (the end of the data).
    end: usize,
    /// Recovery found damaged records in it: readers verify checksums to skip them.
    damaged: bool,
}

/// A reader's position.
#[derive(Clone, Debug)]
pub struct Cursor {
    seg: u32,
    map: Option<Bytes>,
    pos: usize,
    /// Where the segment's data ends, for a segment no longer written to.
    end: usize,
    /// Verify checksums (a recovered segment with damage).
    verify: bool,
    /// The offset the next record read will have (or more, after a gap).
    pub next: u64,
}

/// What an append gave: the message's offset, where its record is, and the commit epoch
/// after which it is on disk.
#[derive(Clone, Copy, Debug)]
pub struct Appended {
    pub offset: u64,
    pub sync: Option<u64>,
    seg: u32,
    pos: usize,
    len: usize,
}

pub struct StreamLog {
    dir: PathBuf,
    opts: StreamOptions,
    retention: Retention,
    segs: VecDeque<Seg>,
    /// The segment being appended to: always the last of `segs` when present.
    writer: Option<(WriteSegment, Bytes)>,
    next_offset: u64,
    next_id: u32,
    bytes: u64,
}

impl StreamLog {
    /// Opens (recovering what `dir` holds) or creates a stream log. Appends after a
    /// restart go to a new segment; a torn tail left by a crash ends its segment.
    pub fn open(dir: &Path, opts: StreamOptions, retention: Retention) -> io::Result<StreamLog> {
        fs::create_dir_all(dir)?;
        let mut ids: Vec<u32> = fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let n = e.file_name();
                n.to_str()?.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut log = StreamLog {
            dir: dir.to_path_buf(),
            opts,
            retention,
            segs: VecDeque::new(),
            writer: None,
            next_offset: 0,
            next_id: ids.last().map_or(1, |l| l + 1),
            bytes: 0,
        };
        for id in ids {
            let map = map_read(dir, id)?;
            let mut seg = Seg {
                id,
                first: u64::MAX,
                next: 0,
                first_ts: 0,
                last_ts: 0,
                end: 0,
                damaged: false,
            };
            let mut pos = 0;
            loop {
                match read_record(&map, pos) {
                    Read::Record(r) => {
                        pos += r.len as usize;
                        // Offsets only grow: a record that does not belongs to nothing.
                        if r.seq < log.next_offset {
                            continue;
                        }
                        let ts = r.expires_at.unwrap_or(0);
                        if seg.first == u64::MAX {
                            seg.first = r.seq;
                            seg.first_ts = ts;
                        }
                        seg.next = r.seq + 1;
                        seg.last_ts = ts;
                        log.next_offset = r.seq + 1;
                    }
                    Read::Damaged { len } => {
                        tracing::warn!(dir = %dir.display(), segment = id, pos, "skipping a damaged stream record");
                        pos += len as usize;
                        seg.damaged = true;
                    }
                    Read::End | Read::Torn => break,
                }
            }
            seg.end = pos;
            if seg.first == u64::MAX {
                let _ = fs::remove_file(segment::segment_path(dir, id));
                continue;
            }
            log.bytes += pos as u64;
            log.segs.push_back(seg);
        }
        Ok(log)
    }

    pub fn set_retention(&mut self, r: Retention) {
        self.retention = r;
    }

    pub fn set_segment_bytes(&mut self, n: u64) {
        self.opts.segment_bytes = n;
    }

    /// The offset of the oldest message kept.
    pub fn first_offset(&self) -> u64 {
        self.segs.front().map_or(self.next_offset, |s| s.first)
    }

    /// The offset the next appended message gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Messages kept (offsets lost to damage included).
    pub fn count(&self) -> u64 {
        self.next_offset - self.first_offset()
    }

    /// Bytes of records kept.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// Appends `msg` (whose properties already carry its offset, if the caller wants
    /// them to) at time `ts`.
    pub fn append(&mut self, msg: &Message, ts: u64) -> io::Result<Appended> {
        let offset = self.next_offset;
        let size = segment::record_size(msg);
        let fits = self
            .writer
            .as_ref()
            .is_some_and(|(w, _)| w.pos + size + 4 <= w.capacity());
        if !fits {
            self.roll(size, ts)?;
        }
        let (w, _) = self.writer.as_mut().expect("rolled");
        let (pos, len) = w
            .append(offset, Some(ts), msg)
            .ok_or_else(|| io::Error::other("a record does not fit a fresh stream segment"))?;
        let sync = self.opts.committer.as_ref().map(|c| c.mark(&w.file));
        let seg = self.segs.back_mut().expect("writer segment");
        if seg.first == u64::MAX {
            seg.first = offset;
            seg.first_ts = ts;
        }
        seg.next = offset + 1;
        seg.last_ts = ts;
        seg.end = pos as usize + len as usize;
        self.bytes += len as u64;
        self.next_offset = offset + 1;
        Ok(Appended {
            offset,
            sync,
            seg: w.id,
            pos: pos as usize,
            len: len as usize,
        })
    }

    /// Starts a new segment big enough for a record of `size`, then applies retention.
    fn roll(&mut self, size: usize, now: u64) -> io::Result<()> {
        let want = self
            .opts
            .segment_bytes
            .clamp(4096, MAX_SEGMENT)
            .max(size as u64 + 4);
        let id = self.next_id;
        let w = WriteSegment::create(&self.dir, id, want as usize)?;
        let map = map_read(&self.dir, id)?;
        self.next_id += 1;
        if let Some(last) = self.segs.back() {
            if last.first == u64::MAX {
                // A segment created but never written (an append that failed): drop it.
                let id = last.id;
                self.segs.pop_back();
                let _ = fs::remove_file(segment::segment_path(&self.dir, id));
            }
        }
        self.segs.push_back(Seg {
            id,
            first: u64::MAX,
            next: self.next_offset,
            first_ts: now,
            last_ts: now,
            end: 0,
            damaged: false,
        });
        self.writer = Some((w, map));
        self.apply_retention(now);
        Ok(())
    }

    /// Removes whole segments from the front while the log is over its size limit or
    /// the segment's newest message is past the age limit. The segment being written
    /// stays. Returns how many segments went.
    pub fn apply_retention(&mut self, now: u64) -> usize {
        let mut removed = 0;
        while self.segs.len() > 1 {
            let front = &self.segs[0];
            let over_size = self.retention.max_bytes.is_some_and(|m| self.bytes > m);
            let too_old = self
                .retention
                .max_age
                .is_some_and(|a| front.last_ts.saturating_add(a) < now);
            if !(over_size || too_old) {
                break;
            }
            let seg = self.segs.pop_front().expect("len > 1");
            self.bytes -= seg.end as u64;
            // Readers still in it keep their mapping; the blocks go when they leave.
            if let Err(e) = fs::remove_file(segment::segment_path(&self.dir, seg.id)) {
                tracing::error!(dir = %self.dir.display(), segment = seg.id, error = %e, "cannot remove a stream segment");
            }
            removed += 1;
        }
        removed
    }

    fn map_of(&self, id: u32) -> io::Result<Bytes> {
        match &self.writer {
            Some((w, map)) if w.id == id => Ok(map.clone()),
            _ => map_read(&self.dir, id),
        }
    }

    /// A cursor at byte `pos` of segment `s`, which it maps.
    fn enter(&self, s: &Seg, pos: usize, next: u64) -> Cursor {
        let writing = self.writer.as_ref().is_some_and(|(w, _)| w.id == s.id);
        Cursor {
            seg: s.id,
            map: self.map_of(s.id).ok(),
            pos,
            // The writer's data ends where the zeroes start; a sealed segment's at `end`
            // (past it, recovery found only a torn tail).
            end: if writing { usize::MAX } else { s.end },
            verify: s.damaged,
            next,
        }
    }

    /// A cursor before segment `after` + 1 (it maps its segment on its first read).
    fn unmapped(after: u32, next: u64) -> Cursor {
        Cursor {
            seg: after,
            map: None,
            pos: 0,
            end: 0,
            verify: false,
            next,
        }
    }

    /// A reader positioned at `start`.
    pub fn cursor(&self, start: Start) -> Cursor {
        let at_end = || match self.segs.back() {
            Some(s) => self.enter(s, s.end, self.next_offset),
            None => Self::unmapped(0, self.next_offset),
        };
        let before_first = || Self::unmapped(0, self.first_offset());
        match start {
            Start::Next => at_end(),
            Start::First => before_first(),
            Start::Last if self.next_offset == self.first_offset() => at_end(),
            Start::Last => self.seek(self.next_offset - 1),
            Start::Offset(n) if n <= self.first_offset() => before_first(),
            // An offset not yet written: the reader waits for it, as in RabbitMQ.
            Start::Offset(n) if n >= self.next_offset => Cursor {
                next: n,
                ..at_end()
            },
            Start::Offset(n) => self.seek(n),
            Start::Timestamp(ts) => {
                let Some(i) = self.segs.iter().position(|s| s.last_ts >= ts) else {
                    return at_end();
                };
                if i == 0 && self.segs[0].first_ts >= ts {
                    return before_first();
                }
                self.scan_to(&self.segs[i], |_, t| t >= ts)
            }
        }
    }

    /// A cursor at offset `n` (first <= n < next).
    fn seek(&self, n: u64) -> Cursor {
        let i = self.segs.partition_point(|s| s.next <= n);
        match self.segs.get(i) {
            Some(s) => self.scan_to(s, |o, _| o >= n),
            None => self.cursor(Start::Next),
        }
    }

    /// A cursor at the first record of `seg` for which `hit(offset, ts)` holds, or at
    /// the segment's end.
    fn scan_to(&self, seg: &Seg, hit: impl Fn(u64, u64) -> bool) -> Cursor {
        let Ok(map) = self.map_of(seg.id) else {
            return Cursor {
                seg: seg.id,
                ..Self::unmapped(seg.id, seg.next)
            };
        };
        let mut pos = 0;
        loop {
            match locate(&map, pos, true) {
                Located::Record(r) if pos < seg.end => {
                    if hit(r.seq, r.expires_at) {
                        return self.enter(seg, pos, r.seq);
                    }
                    pos += r.len as usize;
                }
                Located::Damaged { len } => pos += len as usize,
                _ => return self.enter(seg, pos, seg.next),
            }
        }
    }

    fn is_writing(&self, id: u32) -> bool {
        self.writer.as_ref().is_some_and(|(w, _)| w.id == id)
    }

    /// The next record for `cur` (its `seq` is the offset, its `expires_at` the append
    /// time), or `None` when the reader is at the end of the log.
    pub fn read(&self, cur: &mut Cursor) -> Option<Record> {
        let l = self.next_layout(cur)?;
        Some(l.record(cur.map.as_ref()?))
    }

    /// [`Self::read`] without taking anything: the record's fields borrowed from the
    /// segment mapping, valid until the cursor moves.
    pub fn read_view<'c>(&self, cur: &'c mut Cursor) -> Option<RecordView<'c>> {
        let l = self.next_layout(cur)?;
        Some(l.view(cur.map.as_deref()?))
    }

    /// Moves `cur` past the next record and returns where that record is in the
    /// cursor's mapping.
    fn next_layout(&self, cur: &mut Cursor) -> Option<Layout> {
        loop {
            let Some(map) = &cur.map else {
                // Between segments: the next one after the last segment read.
                let i = self.segs.partition_point(|s| s.id <= cur.seg);
                let s = self.segs.get(i)?;
                let entered = self.enter(s, 0, cur.next);
                entered.map.as_ref()?;
                *cur = entered;
                continue;
            };
            let found = if cur.pos < cur.end {
                locate(map, cur.pos, cur.verify)
            } else {
                Located::End
            };
            match found {
                Located::Record(r) => {
                    cur.pos += r.len as usize;
                    if r.seq < cur.next {
                        continue;
                    }
                    cur.next = r.seq + 1;
                    return Some(r);
                }
                Located::Damaged { len } => cur.pos += len as usize,
                Located::End | Located::Torn => {
                    if self.is_writing(cur.seg) {
                        return None;
                    }
                    let last = self.segs.back().is_some_and(|s| s.id == cur.seg);
                    if last && self.writer.is_none() {
                        return None;
                    }
                    cur.map = None;
                }
            }
        }
    }

    /// Moves `cur` past the record `a` if `cur` is exactly at it (a reader that was at
    /// the end takes a just-appended message without reading it back). Returns whether
    /// it did.
    pub fn take_appended(&self, cur: &mut Cursor, a: &Appended) -> bool {
        if cur.next == a.offset && cur.seg == a.seg && cur.pos == a.pos && cur.map.is_some() {
            cur.pos += a.len;
            cur.next = a.offset + 1;
            return true;
        }
        false
    }

    /// Removes every segment and the directory (the stream is deleted).
    pub fn destroy(&mut self) {
        self.writer = None;
        self.segs.clear();
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot remove a deleted stream's files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_amqp_codec::{BasicProperties, PropertiesView};

    fn msg(body: &[u8]) -> Message {
        let props = BasicProperties::default().to_bytes();
        let view = PropertiesView::parse(&props).unwrap();
        Message::new(
            "".into(),
            "s".into(),
            props,
            &view,
            Bytes::copy_from_slice(body),
        )
    }

    fn opts(seg: u64) -> StreamOptions {
        StreamOptions {
            segment_bytes: seg,
            committer: None,
        }
    }

    fn drain(log: &StreamLog, cur: &mut Cursor) -> Vec<u64> {
        let mut v = Vec::new();
        while let Some(r) = log.read(cur) {
            assert_eq!(&r.body[..], format!("m{}", r.seq).as_bytes());
            v.push(r.seq);
        }
        v
    }

    #[test]
    fn offsets_seek_and_replay_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = StreamLog::open(dir.path(), opts(4096), Retention::default()).unwrap();
        let mut live = log.cursor(Start::Next);
        for i in 0..200u64 {
            let a = log
                .append(&msg(format!("m{i}").as_bytes()), 1000 + i)
                .unwrap();
            assert_eq!(a.offset, i);
            assert!(log.take_appended(&mut live, &a) || log.read(&mut live).unwrap().seq == i);
        }
        assert!(log.segment_count() > 1);
        assert_eq!(
            drain(&log, &mut log.cursor(Start::First)),
            (0..200).collect::<Vec<_>>()
        );
        assert_eq!(
            drain(&log, &mut log.cursor(Start::Offset(150))),
            (150..200).collect::<Vec<_>>()
        );
        assert_eq!(drain(&log, &mut log.cursor(Start::Last)), vec![199]);
        assert!(drain(&log, &mut log.cursor(Start::Next)).is_empty());
        assert_eq!(
            drain(&log, &mut log.cursor(Start::Timestamp(1100))),
            (100..200).collect::<Vec<_>>()
        );
        assert!(drain(&log, &mut log.cursor(Start::Timestamp(5000))).is_empty());
        drop(log);
        let mut log = StreamLog::open(dir.path(), opts(4096), Retention::default()).unwrap();
        assert_eq!((log.first_offset(), log.next_offset()), (0, 200));
        let mut tail = log.cursor(Start::Next);
        let mut from_mid = log.cursor(Start::Offset(190));
        log.append(&msg(b"m200"), 2000).unwrap();
        assert_eq!(drain(&log, &mut tail), vec![200]);
        assert_eq!(drain(&log, &mut from_mid), (190..201).collect::<Vec<_>>());
        assert_eq!(drain(&log, &mut log.cursor(Start::First)).len(), 201);
    }

    #[test]
    fn views_match_records_and_recovery_damage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = StreamLog::open(dir.path(), opts(4096), Retention::default()).unwrap();
        for i in 0..300u64 {
            log.append(&msg(format!("m{i}").as_bytes()), 1).unwrap();
        }
        let (mut a, mut b) = (log.cursor(Start::First), log.cursor(Start::First));
        for i in 0..300u64 {
            let r = log.read(&mut a).unwrap();
            let v = log.read_view(&mut b).unwrap();
            assert_eq!((r.seq, v.seq), (i, i));
            assert_eq!((&r.body[..], &r.properties[..]), (v.body, v.properties));
            assert_eq!((&*r.exchange, &*r.routing_key), (v.exchange, v.routing_key));
        }
        assert!(log.read_view(&mut b).is_none());
        drop(log);
        // Flip a byte of m7's body on disk: recovery skips it, and so do readers.
        let path = segment::segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes
            .windows(3)
            .position(|w| &w[..2] == b"m7" && !w[2].is_ascii_digit())
            .unwrap();
        bytes[at + 1] = b'8';
        fs::write(&path, bytes).unwrap();
        let log = StreamLog::open(dir.path(), opts(4096), Retention::default()).unwrap();
        let mut c = log.cursor(Start::First);
        let mut seen = Vec::new();
        while let Some(v) = log.read_view(&mut c) {
            assert_eq!(v.body, format!("m{}", v.seq).as_bytes());
            seen.push(v.seq);
        }
        let want: Vec<u64> = (0..300).filter(|&i| i != 7).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn retention_removes_whole_old_segments_but_never_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let keep = Retention {
            max_bytes: Some(3 * 4096),
            max_age: None,
        };
        let mut log = StreamLog::open(dir.path(), opts(4096), keep).unwrap();
        let mut reader = log.cursor(Start::First);
        assert_eq!(log.read(&mut reader).map(|r| r.seq), None);
        for i in 0..1000u64 {
            log.append(&msg(format!("m{i}").as_bytes()), 1).unwrap();
        }
        assert!(log.bytes() <= 3 * 4096 + 4096, "{}", log.bytes());
        let first = log.first_offset();
        assert!(first > 0);
        // A reader that started before the removed segments still reads what it had
        // mapped, then continues in the oldest kept segment.
        let all = drain(&log, &mut log.cursor(Start::First));
        assert_eq!(all, (first..1000).collect::<Vec<_>>());
        // By age: everything older than 10 ms by the time the next segment starts.
        log.set_retention(Retention {
            max_bytes: None,
            max_age: Some(10),
        });
        let mut i = 1000;
        let n = log.segment_count();
        while log.segment_count() >= n && i < 3000 {
            log.append(&msg(format!("m{i}").as_bytes()), 1_000_000)
                .unwrap();
            i += 1;
        }
        // Left: the segment that was active when the new messages began (its newest
        // message is new) and the one just started.
        assert_eq!(log.segment_count(), 2);
        assert!(log.first_offset() > first);
    }
}
