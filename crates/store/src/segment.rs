//! Segment files: preallocated, append-only files of checksummed message records.
//!
//! A segment is created at its full size (sparse, zero-filled), so the end of the data is
//! the first record length of zero, and a crash can only leave a torn *tail*: a record
//! whose length runs past the file or whose checksum does not match.
//!
//! Writes go through a writable mapping (an append is a memcpy into the page cache); reads
//! go through a separate read-only mapping wrapped in [`Bytes`], so a record's body,
//! properties and names are slices of that mapping, never copies. Only the segments a
//! queue is writing or reading are mapped, which keeps a long queue's resident memory to
//! a couple of segments.
//!
//! Record layout (little-endian):
//! ```text
//! u32 len        bytes after this field: crc + payload
//! u32 crc32c     of the payload
//! payload:
//!   u64 seq
//!   u64 expires_at        ms since the epoch, 0 = none
//!   u8  flags             bit 0: persistent
//!   u8  exchange length,  exchange
//!   u8  routing key length, routing key
//!   u32 properties length, properties (raw AMQP basic properties)
//!   if flags bit 1: u8 count, count × (u8 length, BCC routing key)
//!   body                  the rest
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapMut, MmapOptions};
use warren_amqp_codec::ShortStr;

use crate::committer::SyncFile;
use crate::Message;

pub const DEFAULT_SEGMENT_SIZE: u32 = 8 << 20;
/// Length + checksum.
pub const RECORD_HEADER: usize = 8;
/// seq + expires_at + flags + two name lengths + properties length.
const FIXED_PAYLOAD: usize = 8 + 8 + 1 + 1 + 1 + 4;

const FLAG_PERSISTENT: u8 = 1;
const FLAG_BCC: u8 = 2;

pub fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.seg"))
}

/// Size a record for `msg` takes in a segment.
pub fn record_size(msg: &Message) -> usize {
    RECORD_HEADER
        + FIXED_PAYLOAD
        + msg.exchange.len()
        + msg.routing_key.len()
        + msg.properties.len()
        + msg.body.len()
        + msg
            .bcc
            .as_ref()
            .map_or(0, |k| 1 + k.iter().map(|k| 1 + k.len()).sum::<usize>())
}

/// A decoded record: every field a slice of the segment mapping.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub expires_at: Option<u64>,
    pub persistent: bool,
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub properties: Bytes,
    pub body: Bytes,
    pub bcc: Option<Box<[ShortStr]>>,
    /// Bytes the record takes in the segment, header included.
    pub len: u32,
}

impl Record {
    pub fn into_message(self) -> Message {
        let view = warren_amqp_codec::PropertiesView::parse(&self.properties).unwrap_or_default();
        let mut m = Message::new(
            self.exchange,
            self.routing_key,
            self.properties,
            &view,
            self.body,
        );
        m.bcc = self.bcc;
        m
    }
}

/// What is at an offset of a segment.
#[derive(Debug)]
pub enum Read {
    Record(Record),
    /// Zeroes: the end of the written data.
    End,
    /// The length is plausible but the checksum is wrong (or a name is not UTF-8): this
    /// record is damaged, the next one starts `len` bytes further.
    Damaged {
        len: u32,
    },
    /// The length runs past the segment: nothing after this offset can be trusted.
    Torn,
}

/// Reads the record at `offset` of a segment's bytes.
pub fn read_record(seg: &Bytes, offset: usize) -> Read {
    match locate(seg, offset, true) {
        Located::Record(l) => Read::Record(l.record(seg)),
        Located::End => Read::End,
        Located::Damaged { len } => Read::Damaged { len },
        Located::Torn => Read::Torn,
    }
}

/// A record's fields as byte ranges of its segment: found without taking a reference
/// on the mapping, so a reader can hold it while it moves its cursor, then borrow
/// ([`Layout::view`]) or slice ([`Layout::record`]) the fields it wants.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub seq: u64,
    /// Raw expiry field (a stream's append time); 0 = none.
    pub expires_at: u64,
    flags: u8,
    exchange: (usize, usize),
    routing_key: (usize, usize),
    properties: (usize, usize),
    /// Where the BCC list starts, if the record has one.
    bcc: Option<usize>,
    body: (usize, usize),
    /// Bytes the record takes in the segment, header included.
    pub len: u32,
}

/// What [`locate`] found at an offset.
#[derive(Debug, Clone, Copy)]
pub enum Located {
    Record(Layout),
    End,
    Damaged { len: u32 },
    Torn,
}

/// A record's fields borrowed from its segment: no reference counts, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub seq: u64,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub properties: &'a [u8],
    pub body: &'a [u8],
}

impl Layout {
    pub fn view<'a>(&self, seg: &'a [u8]) -> RecordView<'a> {
        let s = |(from, to): (usize, usize)| &seg[from..to];
        // Checked by `locate`.
        let name = |r| std::str::from_utf8(s(r)).unwrap_or_default();
        RecordView {
            seq: self.seq,
            exchange: name(self.exchange),
            routing_key: name(self.routing_key),
            properties: s(self.properties),
            body: s(self.body),
        }
    }

    pub fn record(&self, seg: &Bytes) -> Record {
        let slice = |(from, to): (usize, usize)| seg.slice(from..to);
        let name = |r| ShortStr::from_bytes(slice(r)).unwrap_or_default();
        let bcc = self.bcc.map(|mut at| {
            let n = seg[at] as usize;
            at += 1;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                let len = seg[at] as usize;
                keys.push(name((at + 1, at + 1 + len)));
                at += 1 + len;
            }
            keys.into_boxed_slice()
        });
        Record {
            seq: self.seq,
            expires_at: (self.expires_at != 0).then_some(self.expires_at),
            persistent: self.flags & FLAG_PERSISTENT != 0,
            exchange: name(self.exchange),
            routing_key: name(self.routing_key),
            properties: slice(self.properties),
            body: slice(self.body),
            bcc,
            len: self.len,
        }
    }
}

/// The record at `offset` of a segment, checked against its checksum when `verify`.
/// Without `verify` only the framing is checked (lengths within the record, names
/// UTF-8): for records this process wrote, or checked when it recovered the segment.
pub fn locate(seg: &[u8], offset: usize, verify: bool) -> Located {
    if offset + RECORD_HEADER > seg.len() {
        return Located::End;
    }
    let len = u32::from_le_bytes(seg[offset..offset + 4].try_into().unwrap()) as usize;
    if len == 0 {
        return Located::End;
    }
    if len < 4 + FIXED_PAYLOAD || offset + 4 + len > seg.len() {
        return Located::Torn;
    }
    let start = offset + RECORD_HEADER;
    let end = offset + 4 + len;
    let damaged = Located::Damaged {
        len: len as u32 + 4,
    };
    if verify {
        let crc = u32::from_le_bytes(seg[offset + 4..offset + 8].try_into().unwrap());
        if crc32c::crc32c(&seg[start..end]) != crc {
            return damaged;
        }
    }
    match parse_payload(seg, start, end) {
        Some(mut l) => {
            l.len = (len + 4) as u32;
            Located::Record(l)
        }
        None => damaged,
    }
}

fn parse_payload(seg: &[u8], start: usize, end: usize) -> Option<Layout> {
    let p = &seg[start..end];
    let seq = u64::from_le_bytes(p.get(0..8)?.try_into().ok()?);
    let expires_at = u64::from_le_bytes(p.get(8..16)?.try_into().ok()?);
    let flags = *p.get(16)?;
    // (start, end) of each variable field within the segment.
    let mut at = 17;
    let mut field = |len_bytes: usize| -> Option<(usize, usize)> {
        let len = match len_bytes {
            1 => *p.get(at)? as usize,
            _ => u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize,
        };
        let from = at + len_bytes;
        if from + len > p.len() {
            return None;
        }
        at = from + len;
        Some((start + from, start + from + len))
    };
    let ex = field(1)?;
    let rk = field(1)?;
    let props = field(4)?;
    for name in [ex, rk] {
        std::str::from_utf8(&seg[name.0..name.1]).ok()?;
    }
    let mut body_from = props.1 - start;
    let mut bcc = None;
    if flags & FLAG_BCC != 0 {
        bcc = Some(start + body_from);
        let n = *p.get(body_from)? as usize;
        let mut at = body_from + 1;
        for _ in 0..n {
            let len = *p.get(at)? as usize;
            if at + 1 + len > p.len() {
                return None;
            }
            std::str::from_utf8(&p[at + 1..at + 1 + len]).ok()?;
            at += 1 + len;
        }
        body_from = at;
    }
    Some(Layout {
        seq,
        expires_at,
        flags,
        exchange: ex,
        routing_key: rk,
        properties: props,
        bcc,
        body: (start + body_from, end),
        len: 0,
    })
}

/// The segment being appended to.
pub struct WriteSegment {
    pub id: u32,
    pub file: Arc<SyncFile>,
    map: MmapMut,
    /// Next write offset.
    pub pos: usize,
}

impl WriteSegment {
    /// Creates a new segment file of `size` bytes, with its blocks allocated up front:
    /// a write through the mapping into a sparse file on a full disk would kill the
    /// process with SIGBUS, whereas a failed allocation here is an ordinary error.
    pub fn create(dir: &Path, id: u32, size: usize) -> io::Result<WriteSegment> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(e) = allocate(&file, size) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        // SAFETY: the file is ours (created above, never truncated while mapped), so the
        // mapping stays valid; concurrent readers map it read-only and only read bytes
        // below `pos`, which are never written again.
        let map = unsafe { MmapOptions::new().len(size).map_mut(&file)? };
        Ok(WriteSegment {
            id,
            file: SyncFile::new(file),
            map,
            pos: 0,
        })
    }

    pub fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Appends a record for `msg`; `None` if it does not fit. Returns (offset, length).
    pub fn append(
        &mut self,
        seq: u64,
        expires_at: Option<u64>,
        msg: &Message,
    ) -> Option<(u32, u32)> {
        let size = record_size(msg);
        if self.pos + size + 4 > self.map.len() && !(self.pos == 0 && size <= self.map.len()) {
            // Keep 4 zero bytes after the last record as the end marker, except for a
            // record that fills a fresh segment exactly (its end is the file's end).
            return None;
        }
        let at = self.pos;
        let buf = &mut self.map[at..at + size];
        let len = (size - 4) as u32;
        buf[0..4].copy_from_slice(&len.to_le_bytes());
        let p = &mut buf[RECORD_HEADER..];
        p[0..8].copy_from_slice(&seq.to_le_bytes());
        p[8..16].copy_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
        p[16] = if msg.persistent { FLAG_PERSISTENT } else { 0 }
            | if msg.bcc.is_some() { FLAG_BCC } else { 0 };
        let mut i = 17;
        for s in [msg.exchange.as_bytes(), msg.routing_key.as_bytes()] {
            p[i] = s.len() as u8;
            p[i + 1..i + 1 + s.len()].copy_from_slice(s);
            i += 1 + s.len();
        }
        p[i..i + 4].copy_from_slice(&(msg.properties.len() as u32).to_le_bytes());
        i += 4;
        p[i..i + msg.properties.len()].copy_from_slice(&msg.properties);
        i += msg.properties.len();
        if let Some(keys) = &msg.bcc {
            // At most 255 keys are kept: a header that long is not a real use.
            p[i] = keys.len() as u8;
            i += 1;
            for k in keys.iter() {
                p[i] = k.len() as u8;
                p[i + 1..i + 1 + k.len()].copy_from_slice(k.as_bytes());
                i += 1 + k.len();
            }
        }
        p[i..i + msg.body.len()].copy_from_slice(&msg.body);
        let crc = crc32c::crc32c(&buf[RECORD_HEADER..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.pos += size;
        Some((at as u32, size as u32))
    }
}

fn allocate(file: &File, size: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a valid descriptor.
    let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
    match r {
        0 => Ok(()),
        // Filesystems without fallocate (tmpfs on old kernels, some overlays): fall back
        // to a sparse file.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(size as u64),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Maps a whole segment read-only, as `Bytes` (the mapping lives as long as any slice).
pub fn map_read(dir: &Path, id: u32) -> io::Result<Bytes> {
    let file = File::open(segment_path(dir, id))?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: segment bytes below the writer's position are never modified again, and a
    // segment file is only deleted (unlinked), never truncated, while mapped.
    let map: Mmap = unsafe { MmapOptions::new().map(&file)? };
    Ok(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_amqp_codec::{BasicProperties, PropertiesView};

    fn msg(body: &'static [u8], persistent: bool) -> Message {
        let props = BasicProperties {
            delivery_mode: Some(if persistent { 2 } else { 1 }),
            ..Default::default()
        }
        .to_bytes();
        let view = PropertiesView::parse(&props).unwrap();
        Message::new(
            "ex".into(),
            "rk".into(),
            props,
            &view,
            Bytes::from_static(body),
        )
    }

    #[test]
    fn records_round_trip_and_end_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WriteSegment::create(dir.path(), 1, 4096).unwrap();
        let (o1, l1) = w.append(7, None, &msg(b"hello", true)).unwrap();
        let (o2, _) = w.append(8, Some(99), &msg(b"", false)).unwrap();
        assert_eq!((o1, o2), (0, l1));
        let seg = map_read(dir.path(), 1).unwrap();
        let Read::Record(r) = read_record(&seg, 0) else {
            panic!()
        };
        assert_eq!((r.seq, r.persistent, &r.body[..]), (7, true, &b"hello"[..]));
        assert_eq!((r.exchange.as_str(), r.routing_key.as_str()), ("ex", "rk"));
        let Read::Record(r2) = read_record(&seg, o2 as usize) else {
            panic!()
        };
        assert_eq!((r2.seq, r2.expires_at, r2.persistent), (8, Some(99), false));
        assert!(matches!(
            read_record(&seg, (o2 + r2.len) as usize),
            Read::End
        ));
    }

    #[test]
    fn flipped_byte_is_damaged_and_long_length_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WriteSegment::create(dir.path(), 1, 4096).unwrap();
        let (_, len) = w.append(1, None, &msg(b"abc", true)).unwrap();
        w.append(2, None, &msg(b"def", true)).unwrap();
        drop(w);
        let path = segment_path(dir.path(), 1);
        let mut raw = std::fs::read(&path).unwrap();
        raw[len as usize - 1] ^= 0xff; // last body byte of record 1
        std::fs::write(&path, &raw).unwrap();
        let seg = map_read(dir.path(), 1).unwrap();
        assert!(matches!(read_record(&seg, 0), Read::Damaged { len: l } if l == len));
        assert!(matches!(read_record(&seg, len as usize), Read::Record(_)));
        raw[len as usize..len as usize + 4].copy_from_slice(&100_000u32.to_le_bytes());
        std::fs::write(&path, &raw).unwrap();
        let seg = map_read(dir.path(), 1).unwrap();
        assert!(matches!(read_record(&seg, len as usize), Read::Torn));
    }

    #[test]
    fn a_full_segment_refuses_and_a_big_record_fits_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WriteSegment::create(dir.path(), 1, 64).unwrap();
        assert!(w.append(1, None, &msg(&[0u8; 100], true)).is_none());
        let big = msg(b"0123456789", true);
        let exact = record_size(&big);
        let mut w2 = WriteSegment::create(dir.path(), 2, exact).unwrap();
        assert!(w2.append(1, None, &big).is_some());
        assert!(w2.append(2, None, &big).is_none());
    }
}
