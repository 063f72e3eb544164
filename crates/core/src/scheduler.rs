//! Timed work (message and queue expiry, delayed messages), driven by one broker-wide
//! task.
//!
//! An object asks to be woken at a deadline; the scheduler keeps one min-heap of those
//! deadlines and calls [`Timed::fire`] when one is reached. That is what lets a message
//! expire on time wherever it sits in its queue, not only at the head.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::queue::Queue;

/// Milliseconds since the Unix epoch: the clock TTLs are measured on.
/// A cheap monotonic clock (ms, a few ms of resolution) for stamping events on hot paths,
/// such as deliveries awaiting an ack (the consumer timeout).
pub fn coarse_monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass; CLOCK_MONOTONIC_COARSE is
    // served by the vDSO without a system call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Something the scheduler wakes up.
pub trait Timed: Send + Sync {
    fn fire(self: Arc<Self>, now: u64);
}

impl Timed for Queue {
    fn fire(self: Arc<Self>, now: u64) {
        self.expire_due(now);
    }
}

struct Entry {
    at: u64,
    target: Weak<dyn Timed>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        self.at.cmp(&o.at)
    }
}

#[derive(Default)]
pub struct Scheduler {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    wake: Notify,
}

impl Scheduler {
    /// Asks for `target.fire` to be called at `at` (ms since the epoch).
    pub fn schedule<T: Timed + 'static>(&self, at: u64, target: &Arc<T>) {
        let weak: Weak<T> = Arc::downgrade(target);
        let mut h = self.heap.lock();
        let earlier = h.peek().is_none_or(|Reverse(e)| at < e.at);
        h.push(Reverse(Entry { at, target: weak }));
        drop(h);
        if earlier {
            self.wake.notify_one();
        }
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            let next = self.heap.lock().peek().map(|Reverse(e)| e.at);
            match next {
                None => self.wake.notified().await,
                Some(at) => {
                    let now = now_ms();
                    if at > now {
                        let _ = tokio::time::timeout(
                            Duration::from_millis(at - now),
                            self.wake.notified(),
                        )
                        .await;
                        continue;
                    }
                    let mut due = Vec::new();
                    {
                        let mut h = self.heap.lock();
                        while h.peek().is_some_and(|Reverse(e)| e.at <= now) {
                            due.push(h.pop().unwrap().0.target);
                        }
                    }
                    for t in due {
                        if let Some(t) = t.upgrade() {
                            t.fire(now);
                        }
                    }
                    // Let other tasks on this worker run between rounds.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}
