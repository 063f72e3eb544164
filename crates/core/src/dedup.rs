//! Message deduplication (`x-message-deduplication`, the queue interface of the
//! rabbitmq-message-deduplication plugin): a message whose `x-deduplication-header` value
//! belongs to a message still in the queue (ready or unacknowledged) is dropped; its
//! publisher still gets an ack. An entry leaves when its message leaves the queue (acked,
//! consumed without ack, dropped, expired, purged), and the cache is bounded on top: the
//! oldest entry goes when it is full (`x-cache-size`), and entries expire after
//! `x-cache-ttl` ms.

use std::collections::{HashMap, VecDeque};

use warren_amqp_codec::{FieldValue, PropertiesView};
use warren_store::Message;

use crate::settings::Dedup;

#[derive(Default)]
pub struct DedupCache {
    /// key -> (insertion sequence, expires at ms, the queue sequence number of the
    /// message that holds the key)
    seen: HashMap<Vec<u8>, (u64, Option<u64>, u64)>,
    order: VecDeque<(Vec<u8>, u64)>,
    next: u64,
}

/// The deduplication key of a message: its `x-deduplication-header` value, if any.
pub fn key(msg: &Message) -> Option<Vec<u8>> {
    let headers = PropertiesView::parse(&msg.properties)
        .ok()?
        .headers_table()?;
    Some(match headers.get("x-deduplication-header")? {
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => b.to_vec(),
        other => format!("{other:?}").into_bytes(),
    })
}

impl DedupCache {
    /// True if `key` was seen (and is still cached): the message is a duplicate.
    /// Otherwise remembers it.
    pub fn check_and_insert(&mut self, key: Vec<u8>, cfg: &Dedup, now: u64) -> bool {
        if let Some(&(_, exp, _)) = self.seen.get(&key) {
            if exp.is_none_or(|e| now < e) {
                return true;
            }
        }
        self.next += 1;
        let seq = self.next;
        self.seen.insert(
            key.clone(),
            (seq, cfg.cache_ttl.map(|t| now.saturating_add(t)), u64::MAX),
        );
        self.order.push_back((key, seq));
        while self.seen.len() > cfg.cache_size.max(1) {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            // Only the entry's latest insertion counts.
            if self.seen.get(&k).is_some_and(|&(cur, _, _)| cur == s) {
                self.seen.remove(&k);
            }
        }
        // Keep the order list from growing past the live entries with stale duplicates.
        if self.order.len() > 2 * cfg.cache_size.max(1) + 16 {
            let seen = &self.seen;
            self.order
                .retain(|(k, s)| seen.get(k).is_some_and(|&(cur, _, _)| cur == *s));
        }
        false
    }

    /// Records which queued message holds `key` (inserted just before it was stored).
    pub fn own(&mut self, key: &[u8], message_seq: u64) {
        if let Some(e) = self.seen.get_mut(key) {
            e.2 = message_seq;
        }
    }

    /// The message `message_seq` left the queue: its key is free again (unless the
    /// entry was evicted and now belongs to a later message).
    pub fn forget(&mut self, key: &[u8], message_seq: u64) {
        if self.seen.get(key).is_some_and(|e| e.2 == message_seq) {
            self.seen.remove(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_size_and_ttl() {
        let cfg = Dedup {
            cache_size: 2,
            cache_ttl: Some(100),
        };
        let mut c = DedupCache::default();
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 0));
        assert!(c.check_and_insert(b"a".to_vec(), &cfg, 50));
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 150)); // expired, cached again
        assert!(!c.check_and_insert(b"b".to_vec(), &cfg, 160));
        assert!(!c.check_and_insert(b"c".to_vec(), &cfg, 170)); // evicts a
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 180));
        assert!(c.check_and_insert(b"c".to_vec(), &cfg, 190));
    }

    #[test]
    fn freed_when_its_message_leaves() {
        let cfg = Dedup {
            cache_size: 1,
            cache_ttl: None,
        };
        let mut c = DedupCache::default();
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 0));
        c.own(b"a", 1);
        assert!(c.check_and_insert(b"a".to_vec(), &cfg, 0));
        c.forget(b"a", 1);
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 0));
        c.own(b"a", 2);
        assert!(!c.check_and_insert(b"b".to_vec(), &cfg, 0)); // evicts a (held by 2)
        c.own(b"b", 3);
        assert!(!c.check_and_insert(b"a".to_vec(), &cfg, 0)); // evicts b
        c.own(b"a", 4);
        c.forget(b"a", 2); // the evicted holder leaving frees nothing
        assert!(c.check_and_insert(b"a".to_vec(), &cfg, 0));
    }
}
