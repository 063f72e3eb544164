//! Publisher-confirm bookkeeping for one channel: which delivery tags are still waiting
//! for the broker's `basic.ack` / `basic.nack`, and when each was sent, so a producer can
//! keep at most `--confirm WINDOW` in flight and report confirm latency.
//!
//! Tags are consecutive from 1 in confirm mode, so the pending set is a ring indexed by
//! `tag - first`: O(1) per publish and per settled tag, no hashing, no allocation once the
//! ring has grown to the window.

use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct ConfirmTracker {
    /// Tag of `pending[0]`.
    first: u64,
    /// Send time (ns) per tag from `first` on; 0 once settled.
    pending: VecDeque<u64>,
    outstanding: u64,
}

impl ConfirmTracker {
    pub fn new() -> ConfirmTracker {
        ConfirmTracker {
            first: 1,
            pending: VecDeque::new(),
            outstanding: 0,
        }
    }

    /// Records the next publish (tag = previous + 1) sent at `ts_ns` (must be non-zero).
    #[inline]
    pub fn published(&mut self, ts_ns: u64) {
        self.pending.push_back(ts_ns.max(1));
        self.outstanding += 1;
    }

    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// Settles `tag` (and every earlier pending tag if `multiple`), calling `settled` with
    /// the send time of each newly settled tag. Returns how many were settled; tags already
    /// settled or never sent are ignored.
    pub fn settle(&mut self, tag: u64, multiple: bool, mut settled: impl FnMut(u64)) -> u64 {
        if tag < self.first {
            return 0;
        }
        let idx = (tag - self.first) as usize;
        if idx >= self.pending.len() {
            return 0;
        }
        let mut n = 0;
        let from = if multiple { 0 } else { idx };
        for slot in self.pending.range_mut(from..=idx) {
            if *slot != 0 {
                settled(*slot);
                *slot = 0;
                n += 1;
            }
        }
        while self.pending.front() == Some(&0) {
            self.pending.pop_front();
            self.first += 1;
        }
        self.outstanding -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_multiple_and_out_of_order() {
        let mut t = ConfirmTracker::new();
        for ts in 10..15 {
            t.published(ts); // tags 1..=5
        }
        assert_eq!(t.outstanding(), 5);
        let mut seen = Vec::new();
        assert_eq!(t.settle(3, false, |ts| seen.push(ts)), 1);
        assert_eq!(seen, vec![12]);
        assert_eq!(t.settle(3, false, |_| ()), 0, "double ack is ignored");
        assert_eq!(t.settle(4, true, |ts| seen.push(ts)), 3);
        assert_eq!(seen, vec![12, 10, 11, 13]);
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.settle(99, true, |_| ()), 0, "unknown tag is ignored");
        t.published(20); // tag 6
        assert_eq!(t.settle(6, true, |_| ()), 2);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.settle(1, false, |_| ()), 0);
        t.published(30); // tag 7
        assert_eq!(t.settle(7, false, |ts| seen.push(ts)), 1);
        assert_eq!(seen.last(), Some(&30));
    }
}
