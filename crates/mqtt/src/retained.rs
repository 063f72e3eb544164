//! Retained messages, kept durably in `<data dir>/mqtt-retained/retained.log`.
//!
//! RabbitMQ keeps retained messages per vhost in a DETS file beside the broker's data;
//! Warren keeps one append-only log for all vhosts: a record per change (set or clear),
//! each with a length and a CRC-32, replayed at start-up. A torn or corrupt tail (a crash
//! mid-write) is dropped and logged, never trusted. When the log holds more than twice
//! what is live it is rewritten to a temporary file, fsynced, and renamed over the old
//! one (atomic). Appends reach the page cache at once and the disk within
//! [`SYNC_EVERY`] (and at shutdown), so a retained message survives a broker restart,
//! and a machine crash loses at most the last fraction of a second of changes.
//!
//! A message's properties are stored in the broker's (AMQP) form, so a retained MQTT 5
//! message comes back with its properties exactly as a queued one does.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use warren_mqtt_codec::{topic, QoS};

/// How often appended changes are fsynced.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// Below this size the log is never compacted.
const COMPACT_MIN: u64 = 4 << 20;

const OP_CLEAR: u8 = 0;
const OP_SET: u8 = 1;

/// A retained message.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub qos: QoS,
    /// Raw AMQP basic properties.
    pub properties: Bytes,
    pub payload: Bytes,
    /// ms since the Unix epoch (MQTT 5 Message Expiry Interval).
    pub expires_at: Option<u64>,
}

impl Entry {
    fn record_len(&self, vhost: &str, topic: &str) -> u64 {
        (8 + 1
            + 2
            + vhost.len()
            + 2
            + topic.len()
            + 1
            + 8
            + 4
            + self.properties.len()
            + 4
            + self.payload.len()) as u64
    }
}

struct Inner {
    /// vhost -> topic -> message. Sorted by topic so listings are stable.
    map: HashMap<String, BTreeMap<String, Entry>>,
    file: File,
    log_bytes: u64,
    live_bytes: u64,
    dirty: bool,
}

pub struct RetainedStore {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

impl RetainedStore {
    /// Opens (or creates) the store under `data_dir`, replaying the log.
    pub fn open(data_dir: &Path) -> io::Result<Arc<RetainedStore>> {
        let dir = data_dir.join("mqtt-retained");
        fs::create_dir_all(&dir)?;
        let path = dir.join("retained.log");
        let mut map: HashMap<String, BTreeMap<String, Entry>> = HashMap::new();
        let mut good = 0u64;
        if let Ok(mut f) = File::open(&path) {
            let mut raw = Vec::new();
            f.read_to_end(&mut raw)?;
            let raw = Bytes::from(raw);
            let mut pos = 0usize;
            while let Some((op, vhost, topic, entry, len)) = read_record(&raw, pos) {
                let vmap = map.entry(vhost).or_default();
                match (op, entry) {
                    (OP_SET, Some(e)) => {
                        vmap.insert(topic, e);
                    }
                    _ => {
                        vmap.remove(&topic);
                    }
                }
                pos += len;
            }
            good = pos as u64;
            if pos < raw.len() {
                tracing::warn!(
                    path = %path.display(),
                    dropped = raw.len() - pos,
                    "retained message log has a torn or corrupt tail; dropping it"
                );
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        // Cut any bad tail so new records follow the last good one.
        file.set_len(good)?;
        let mut file = file;
        use std::io::Seek;
        file.seek(io::SeekFrom::End(0))?;
        let live_bytes = map
            .iter()
            .flat_map(|(v, m)| m.iter().map(move |(t, e)| e.record_len(v, t)))
            .sum();
        let n: usize = map.values().map(BTreeMap::len).sum();
        if n > 0 {
            tracing::info!(messages = n, "retained messages recovered");
        }
        Ok(Arc::new(RetainedStore {
            dir,
            inner: Mutex::new(Inner {
                map,
                file,
                log_bytes: good,
                live_bytes,
                dirty: false,
            }),
        }))
    }

    /// Retains `entry` for `topic` (replacing what was there), or clears it (`None`).
    pub fn set(&self, vhost: &str, topic: &str, entry: Option<Entry>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let vmap = inner.map.entry(vhost.to_string()).or_default();
        let old = match &entry {
            Some(e) => vmap.insert(topic.to_string(), e.clone()),
            None => vmap.remove(topic),
        };
        if old.is_none() && entry.is_none() {
            return Ok(());
        }
        let mut rec = BytesMut::new();
        write_record(&mut rec, vhost, topic, entry.as_ref());
        inner.file.write_all(&rec)?;
        inner.dirty = true;
        inner.log_bytes += rec.len() as u64;
        if let Some(o) = &old {
            inner.live_bytes = inner.live_bytes.saturating_sub(o.record_len(vhost, topic));
        }
        if let Some(e) = &entry {
            inner.live_bytes += e.record_len(vhost, topic);
        }
        if inner.log_bytes > COMPACT_MIN && inner.log_bytes > 2 * inner.live_bytes {
            self.compact(&mut inner)?;
        }
        Ok(())
    }

    /// The live retained messages whose topics match `filter` in `vhost`.
    pub fn matching(&self, vhost: &str, filter: &str, now_ms: u64) -> Vec<(String, Entry)> {
        let inner = self.inner.lock();
        let Some(vmap) = inner.map.get(vhost) else {
            return Vec::new();
        };
        let live = |e: &Entry| e.expires_at.is_none_or(|t| t > now_ms);
        if !filter.contains(['+', '#']) {
            return vmap
                .get(filter)
                .filter(|e| live(e))
                .map(|e| vec![(filter.to_string(), e.clone())])
                .unwrap_or_default();
        }
        vmap.iter()
            .filter(|(t, e)| live(e) && topic::matches(filter, t))
            .map(|(t, e)| (t.clone(), e.clone()))
            .collect()
    }

    /// Makes every change so far durable.
    pub fn sync(&self) -> io::Result<()> {
        let file = {
            let mut inner = self.inner.lock();
            if !inner.dirty {
                return Ok(());
            }
            inner.dirty = false;
            inner.file.try_clone()?
        };
        file.sync_data()
    }

    fn compact(&self, inner: &mut Inner) -> io::Result<()> {
        let tmp = self.dir.join("retained.log.tmp");
        let mut out = BytesMut::new();
        for (v, m) in &inner.map {
            for (t, e) in m {
                write_record(&mut out, v, t, Some(e));
            }
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
        }
        let path = self.dir.join("retained.log");
        fs::rename(&tmp, &path)?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.flush()?;
        inner.file = file;
        inner.log_bytes = out.len() as u64;
        inner.live_bytes = inner.log_bytes;
        inner.dirty = false;
        Ok(())
    }
}

fn write_record(buf: &mut BytesMut, vhost: &str, topic: &str, entry: Option<&Entry>) {
    let mut body = BytesMut::new();
    body.put_u8(if entry.is_some() { OP_SET } else { OP_CLEAR });
    body.put_u16(vhost.len() as u16);
    body.put_slice(vhost.as_bytes());
    body.put_u16(topic.len() as u16);
    body.put_slice(topic.as_bytes());
    if let Some(e) = entry {
        body.put_u8(e.qos as u8);
        body.put_u64(e.expires_at.unwrap_or(0));
        body.put_u32(e.properties.len() as u32);
        body.put_slice(&e.properties);
        body.put_u32(e.payload.len() as u32);
        body.put_slice(&e.payload);
    }
    buf.put_u32(body.len() as u32);
    buf.put_u32(crc32(&body));
    buf.put_slice(&body);
}

type Record = (u8, String, String, Option<Entry>, usize);

/// Reads the record at `pos`: `None` at the end, or at a torn or corrupt record.
fn read_record(raw: &Bytes, pos: usize) -> Option<Record> {
    let head = raw.get(pos..pos + 8)?;
    let len = u32::from_be_bytes(head[0..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(head[4..8].try_into().ok()?);
    let body = raw.slice(pos + 8..(pos + 8).checked_add(len).filter(|&e| e <= raw.len())?);
    if crc32(&body) != crc {
        return None;
    }
    let mut r = Cursor { b: &body, i: 0 };
    let op = r.u8()?;
    let vhost = r.string()?;
    let topic = r.string()?;
    let entry = if op == OP_SET {
        let qos = QoS::from_u8(r.u8()?)?;
        let exp = r.u64()?;
        let plen = r.u32()? as usize;
        let properties = body.slice(r.take(plen)?);
        let len = r.u32()? as usize;
        let payload = body.slice(r.take(len)?);
        Some(Entry {
            qos,
            properties,
            payload,
            expires_at: (exp != 0).then_some(exp),
        })
    } else {
        None
    };
    Some((op, vhost, topic, entry, 8 + len))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<std::ops::Range<usize>> {
        let r = self.i..self.i.checked_add(n)?;
        if r.end > self.b.len() {
            return None;
        }
        self.i = r.end;
        Some(r)
    }
    fn u8(&mut self) -> Option<u8> {
        let r = self.take(1)?;
        Some(self.b[r.start])
    }
    fn u16(&mut self) -> Option<u16> {
        let r = self.take(2)?;
        Some(u16::from_be_bytes(self.b[r].try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        let r = self.take(4)?;
        Some(u32::from_be_bytes(self.b[r].try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let r = self.take(8)?;
        Some(u64::from_be_bytes(self.b[r].try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        let r = self.take(n)?;
        String::from_utf8(self.b[r].to_vec()).ok()
    }
}

/// CRC-32 (IEEE), bitwise: records are small and written once.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &'static str) -> Entry {
        Entry {
            qos: QoS::AtLeastOnce,
            properties: Bytes::from_static(b"\x00\x00"),
            payload: Bytes::from_static(p.as_bytes()),
            expires_at: None,
        }
    }

    #[test]
    fn survives_reopen_and_drops_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("warren-retained-{}", rand::random::<u64>()));
        {
            let s = RetainedStore::open(&dir).unwrap();
            s.set("/", "a/b", Some(entry("1"))).unwrap();
            s.set("/", "a/c", Some(entry("2"))).unwrap();
            s.set("/", "a/b", None).unwrap();
            s.set("v", "a/b", Some(entry("3"))).unwrap();
            s.sync().unwrap();
        }
        let log = dir.join("mqtt-retained/retained.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        drop(f);
        let s = RetainedStore::open(&dir).unwrap();
        assert_eq!(
            s.matching("/", "a/#", 0),
            vec![("a/c".to_string(), entry("2"))]
        );
        assert_eq!(s.matching("v", "a/b", 0).len(), 1);
        assert!(s.matching("/", "a/b", 0).is_empty());
        s.set("/", "x", Some(entry("4"))).unwrap();
        drop(s);
        let s = RetainedStore::open(&dir).unwrap();
        assert_eq!(s.matching("/", "x", 0).len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crc_matches_the_standard() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
