//! Message deduplication (`x-message-deduplication`, the interface of the
//! rabbitmq-message-deduplication plugin): a bounded cache of `x-deduplication-header`
//! values; a message whose value is in the cache is dropped (its publisher still gets an
//! ack). The oldest entry goes when the cache is full; entries expire after `x-cache-ttl`.

use std::collections::{HashMap, VecDeque};

use warren_amqp_codec::{FieldValue, PropertiesView};
use warren_store::Message;

use crate::settings::Dedup;

#[derive(Default)]
pub struct DedupCache {
    /// key -> (insertion sequence, expires at ms)
    seen: HashMap<Vec<u8>, (u64, Option<u64>)>,
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
        if let Some(&(_, exp)) = self.seen.get(&key) {
            if exp.is_none_or(|e| now < e) {
                return true;
            }
        }
        self.next += 1;
        let seq = self.next;
        self.seen.insert(
            key.clone(),
            (seq, cfg.cache_ttl.map(|t| now.saturating_add(t))),
        );
        self.order.push_back((key, seq));
        while self.seen.len() > cfg.cache_size.max(1) {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            // Only the entry's latest insertion counts.
            if self.seen.get(&k).is_some_and(|&(cur, _)| cur == s) {
                self.seen.remove(&k);
            }
        }
        // Keep the order list from growing past the live entries with stale duplicates.
        if self.order.len() > 2 * cfg.cache_size.max(1) + 16 {
            let seen = &self.seen;
            self.order
                .retain(|(k, s)| seen.get(k).is_some_and(|&(cur, _)| cur == *s));
        }
        false
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
}
