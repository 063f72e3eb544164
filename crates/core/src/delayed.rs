//! Delayed messages, built in: exchange type `x-delayed-message` with argument
//! `x-delayed-type`, and the `x-delay` header (ms) — the interface of RabbitMQ's community
//! plugin, but durable, accurate to a few milliseconds, with no 49-day limit, and with
//! memory that does not grow with the number of pending messages.
//!
//! Pending messages live on disk in time buckets, each a segment store whose records carry
//! their due time: one-second buckets for messages due within the hour, one-hour buckets
//! beyond. When an hour bucket comes within the hour it is re-filed into one-second
//! buckets; when a one-second bucket comes due its messages are read into memory and
//! routed at their exact time. Only the current second's messages are ever in memory.
//!
//! A message is settled in its bucket only after it has been routed, so a crash in
//! between delivers it (again) after the restart rather than losing it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use warren_amqp_codec::PropertiesView;
use warren_store::disk::{DiskOptions, DiskQueueStore};
use warren_store::{Envelope, Message, QueueStore};

use crate::exchange::Exchange;
use crate::scheduler::{now_ms, Scheduler, Timed};
use crate::vhost::VHost;

const FINE: u64 = 1_000;
const COARSE: u64 = 3_600_000;
/// Messages due within this horizon go to one-second buckets.
const HORIZON: u64 = COARSE;

/// The delay a message asks for: its `x-delay` header, if positive.
pub fn delay_of(msg: &Message) -> Option<u64> {
    let headers = PropertiesView::parse(&msg.properties)
        .ok()?
        .headers_table()?;
    let d = headers.get("x-delay")?.as_i64()?;
    (d > 0).then_some(d as u64)
}

struct Bucket {
    store: DiskQueueStore,
    /// Messages taken out for routing and not yet settled.
    out: usize,
}

#[derive(Default)]
struct State {
    fine: BTreeMap<u64, Bucket>,
    coarse: BTreeMap<u64, Bucket>,
    /// The current second's messages, by due time: (due, seq, bucket key).
    near: BinaryHeap<Reverse<(u64, u64, u64)>>,
    near_msgs: std::collections::HashMap<(u64, u64), Envelope>,
    wake_at: Option<u64>,
}

pub struct DelayedExchange {
    dir: PathBuf,
    opts: DiskOptions,
    vhost: Weak<VHost>,
    exchange: Weak<Exchange>,
    scheduler: Arc<Scheduler>,
    state: Mutex<State>,
}

impl DelayedExchange {
    /// Opens (and recovers) the pending messages of a delayed exchange.
    pub fn open(
        dir: PathBuf,
        opts: DiskOptions,
        vhost: Weak<VHost>,
        exchange: Weak<Exchange>,
        scheduler: Arc<Scheduler>,
    ) -> std::io::Result<Arc<DelayedExchange>> {
        if !opts.durable && dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let mut st = State::default();
        for e in fs::read_dir(&dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let (kind, key) = name.split_at(1);
            let Ok(key) = key.parse::<u64>() else {
                continue;
            };
            let mut store = DiskQueueStore::open(&e.path(), opts.clone())?;
            // The store lists recovered records with a due time for a queue's TTL index;
            // buckets find due messages by their key instead, so the list is dropped
            // rather than kept (it would cost memory per pending message).
            drop(store.recovered_expiries());
            let b = Bucket { store, out: 0 };
            match kind {
                "f" => st.fine.insert(key, b),
                "c" => st.coarse.insert(key, b),
                _ => continue,
            };
        }
        let pending: u64 = st
            .fine
            .values()
            .chain(st.coarse.values())
            .map(|b| b.store.ready_count())
            .sum();
        if pending > 0 {
            tracing::info!(dir = %dir.display(), pending, "delayed messages recovered");
        }
        let d = Arc::new(DelayedExchange {
            dir,
            opts,
            vhost,
            exchange,
            scheduler,
            state: Mutex::new(st),
        });
        d.reschedule(&mut d.state.lock(), now_ms());
        Ok(d)
    }

    fn bucket_dir(&self, coarse: bool, key: u64) -> PathBuf {
        self.dir
            .join(format!("{}{key}", if coarse { 'c' } else { 'f' }))
    }

    fn bucket<'a>(
        &self,
        st: &'a mut State,
        due: u64,
        now: u64,
    ) -> std::io::Result<(&'a mut Bucket, u64)> {
        let coarse = due >= now.saturating_add(HORIZON);
        let width = if coarse { COARSE } else { FINE };
        let key = due - due % width;
        let map = if coarse { &mut st.coarse } else { &mut st.fine };
        if let std::collections::btree_map::Entry::Vacant(slot) = map.entry(key) {
            let store = DiskQueueStore::open(&self.bucket_dir(coarse, key), self.opts.clone())?;
            slot.insert(Bucket { store, out: 0 });
        }
        Ok((map.get_mut(&key).expect("inserted"), key))
    }

    /// Holds a message until `now + delay`. Returns the commit epoch to wait for before
    /// confirming it, for a persistent message on a durable exchange.
    pub fn hold(self: &Arc<Self>, msg: Arc<Message>, delay: u64) -> std::io::Result<Option<u64>> {
        self.hold_at(msg, delay, now_ms())
    }

    fn hold_at(
        self: &Arc<Self>,
        msg: Arc<Message>,
        delay: u64,
        now: u64,
    ) -> std::io::Result<Option<u64>> {
        let due = now.saturating_add(delay);
        let mut st = self.state.lock();
        let (b, key) = self.bucket(&mut st, due, now)?;
        let pushed = b.store.push(msg, Some(due))?;
        let started = due < now.saturating_add(HORIZON) && key <= now;
        if started {
            // Its second has begun and was loaded already: load this one too.
            Self::load(&mut st, key);
        }
        if st.wake_at.is_none_or(|w| due < w || key < w) {
            self.reschedule(&mut st, now);
        }
        Ok(pushed.sync)
    }

    /// Moves a one-second bucket's ready messages into memory, ordered by due time.
    fn load(st: &mut State, key: u64) {
        let Some(b) = st.fine.get_mut(&key) else {
            return;
        };
        let mut loaded = Vec::new();
        while let Some(env) = b.store.pop() {
            b.out += 1;
            loaded.push(env);
        }
        for env in loaded {
            let due = env.expires_at.unwrap_or(0);
            st.near.push(Reverse((due, env.seq, key)));
            st.near_msgs.insert((key, env.seq), env);
        }
    }

    /// Number of messages waiting.
    pub fn pending(&self) -> u64 {
        let st = self.state.lock();
        st.fine
            .values()
            .chain(st.coarse.values())
            .map(|b| b.store.ready_count() + b.out as u64)
            .sum()
    }

    fn reschedule(self: &Arc<Self>, st: &mut State, now: u64) {
        let near = st.near.peek().map(|Reverse((due, ..))| *due);
        // A one-second bucket is loaded as its second begins (those that began are in
        // `near` already); an hour bucket is re-filed as it comes within the horizon.
        let fine = st
            .fine
            .range(now.saturating_add(1)..)
            .next()
            .map(|(&k, _)| k);
        // An hour bucket's whole hour is within the horizon once its hour begins
        // (HORIZON == COARSE), so all it holds then goes to one-second buckets.
        let coarse = st.coarse.keys().next().copied();
        let Some(at) = [near, fine, coarse].into_iter().flatten().min() else {
            st.wake_at = None;
            return;
        };
        let at = at.max(now);
        if st.wake_at != Some(at) {
            st.wake_at = Some(at);
            self.scheduler.schedule(at, self);
        }
    }

    fn due_now(self: &Arc<Self>, now: u64) -> Vec<(u64, Envelope)> {
        let mut st = self.state.lock();
        // Re-file hour buckets whose hour has begun: every message in one is then due
        // within the horizon and goes to a one-second bucket. (Re-filing earlier would
        // send some back to an hour bucket with this one's key and directory.)
        while let Some((&key, _)) = st.coarse.iter().next() {
            if key > now {
                break;
            }
            let mut b = st.coarse.remove(&key).expect("present");
            while let Some(env) = b.store.pop() {
                let due = env.expires_at.unwrap_or(now);
                match self.bucket(&mut st, due, now) {
                    Ok((fb, _)) => {
                        if let Err(e) = fb.store.push(env.msg.clone(), Some(due)) {
                            tracing::error!(error = %e, "cannot re-file a delayed message");
                            b.store.requeue(env);
                            break;
                        }
                        b.store.settle(&env);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot re-file a delayed message");
                        b.store.requeue(env);
                        break;
                    }
                }
            }
            if b.store.ready_count() == 0 {
                b.store.destroy();
            } else {
                st.coarse.insert(key, b);
                break;
            }
        }
        // Load the seconds that have begun.
        let started: Vec<u64> = st.fine.range(..=now).map(|(&k, _)| k).collect();
        for key in started {
            Self::load(&mut st, key);
        }
        let mut out = Vec::new();
        while let Some(&Reverse((due, seq, key))) = st.near.peek() {
            if due > now {
                break;
            }
            st.near.pop();
            if let Some(env) = st.near_msgs.remove(&(key, seq)) {
                out.push((key, env));
            }
        }
        st.wake_at = None;
        self.reschedule(&mut st, now);
        out
    }

    fn settle(&self, key: u64, env: &Envelope) {
        let mut st = self.state.lock();
        let Some(b) = st.fine.get_mut(&key) else {
            return;
        };
        b.store.settle(env);
        b.out -= 1;
        if b.out == 0 && b.store.ready_count() == 0 {
            let mut b = st.fine.remove(&key).expect("present");
            b.store.destroy();
        }
    }

    /// Removes everything (the exchange is deleted).
    pub fn destroy(&self) {
        let mut st = self.state.lock();
        for (_, mut b) in std::mem::take(&mut st.fine)
            .into_iter()
            .chain(std::mem::take(&mut st.coarse))
        {
            b.store.destroy();
        }
        st.near.clear();
        st.near_msgs.clear();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Timed for DelayedExchange {
    fn fire(self: Arc<Self>, now: u64) {
        let due = self.due_now(now);
        if due.is_empty() {
            return;
        }
        let (Some(vhost), Some(exchange)) = (self.vhost.upgrade(), self.exchange.upgrade()) else {
            return;
        };
        let mut scratch = Vec::new();
        for (key, env) in due {
            if !exchange.is_deleted() {
                vhost.publish_now(&exchange, env.msg.clone(), &mut scratch);
            }
            self.settle(key, &env);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warren_amqp_codec::ShortStr;

    fn msg(n: u64) -> Arc<Message> {
        let view = PropertiesView::default();
        let mut m = Message::new(
            ShortStr::default(),
            ShortStr::default(),
            Bytes::new(),
            &view,
            Bytes::from(n.to_le_bytes().to_vec()),
        );
        // Only persistent messages outlive a restart.
        m.persistent = true;
        Arc::new(m)
    }

    fn open(dir: &std::path::Path) -> Arc<DelayedExchange> {
        let opts = DiskOptions {
            segment_size: 1 << 20,
            durable: true,
            committer: None,
            flusher: None,
            after_crash: false,
            memory_tail: false,
        };
        DelayedExchange::open(
            dir.to_path_buf(),
            opts,
            Weak::new(),
            Weak::new(),
            Arc::new(Scheduler::default()),
        )
        .unwrap()
    }

    /// Every message comes out once, not before its time and within a second of it
    /// (the test steps the clock by a second), across hour buckets and a reopen.
    #[test]
    fn long_delays_are_refiled_and_kept_across_reopen() {
        let dir = std::env::temp_dir().join(format!("warren-delayed-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let t0 = 1_700_000_000_000u64;
        let n = 3000u64;
        let mut due = std::collections::HashMap::new();
        {
            let d = open(&dir);
            for i in 0..n {
                // 0.5 s .. 3 h, spread over several hour buckets
                let delay = 500 + (i * 7919 * 1000) % (3 * COARSE);
                d.hold_at(msg(i), delay, t0).unwrap();
                due.insert(i, t0 + delay);
            }
            assert_eq!(d.pending(), n);
        }
        let d = open(&dir);
        assert_eq!(d.pending(), n, "all pending after reopen");
        let mut seen = std::collections::HashSet::new();
        let mut now = t0;
        while now <= t0 + 3 * COARSE + 2 * FINE {
            for (key, env) in d.due_now(now) {
                let i = u64::from_le_bytes(env.msg.body[..8].try_into().unwrap());
                assert!(now >= due[&i], "message {i} early");
                assert!(now < due[&i] + FINE, "message {i} late");
                assert!(seen.insert(i), "message {i} twice");
                d.settle(key, &env);
            }
            now += FINE;
        }
        assert_eq!(seen.len() as u64, n);
        assert_eq!(d.pending(), 0);
        d.destroy();
    }
}
