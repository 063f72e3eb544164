//! Which messages arrived, so a run can say whether the broker lost or duplicated any.
//!
//! Every stamped body carries (producer index, that producer's message number). Each
//! queue should deliver every message of every producer exactly once, so the tracker
//! keeps, per (queue, producer), a bitmap of the sequence numbers seen. A second
//! delivery of a number is a duplicate (an error, unless the broker flagged it
//! `redelivered`); numbers a producer sent that never arrived are missing. The bitmap
//! drops its leading words once they are full, so a long in-order run keeps only the
//! window of messages still in flight.
//!
//! Workers collect the numbers of one read batch and apply them under one lock, so the
//! hot path costs a `Vec` push per delivery and the lock is taken once per batch.
//!
//! Streams ([`Tracker::ordered`]) are stricter: every consumer must get every message,
//! so the tracks are per (consumer, producer), and a stream delivers in order, so a
//! number below one already seen from that producer is an error of its own
//! (out of order). A replay of a stream warren-perf did not fill in this run has no
//! sent counts to compare with; its tracks start at the first number each consumer saw
//! and [`Tracker::gaps`] finds what is missing in between.

use std::collections::VecDeque;
use std::sync::Mutex;

/// One (queue, producer) stream of sequence numbers.
#[derive(Debug)]
struct Track {
    queue: u16,
    producer: u16,
    /// Sequence number of bit 0 of `words[0]`; everything below it was seen.
    base: u64,
    words: VecDeque<u64>,
    distinct: u64,
    /// The highest number marked.
    last: Option<u64>,
}

impl Track {
    fn new(queue: u16, producer: u16, base: u64) -> Track {
        Track {
            queue,
            producer,
            base,
            words: VecDeque::new(),
            distinct: 0,
            last: None,
        }
    }

    /// Marks `seq`; false if it was already marked.
    fn mark(&mut self, seq: u64) -> bool {
        if seq < self.base {
            return false;
        }
        let off = seq - self.base;
        let word = (off / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (off % 64);
        let w = &mut self.words[word];
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.distinct += 1;
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
        true
    }

    fn compact(&mut self) {
        while self.words.len() > 1 && self.words[0] == u64::MAX {
            self.words.pop_front();
            self.base += 64;
        }
    }

    /// Sequence numbers below `sent` never marked: how many, and the first few.
    fn missing(&self, sent: u64, examples: &mut Vec<u64>, max_examples: usize) -> u64 {
        let mut n = 0;
        let mut seq = self.base;
        for w in &self.words {
            if seq >= sent {
                return n;
            }
            if *w != u64::MAX {
                for b in 0..64 {
                    let s = seq + b;
                    if s >= sent {
                        break;
                    }
                    if w & (1 << b) == 0 {
                        n += 1;
                        if examples.len() < max_examples {
                            examples.push(s);
                        }
                    }
                }
            }
            seq += 64;
        }
        if sent > seq {
            let room = max_examples.saturating_sub(examples.len()) as u64;
            examples.extend(seq..sent.min(seq + room));
            n += sent - seq;
        }
        n
    }
}

/// What the batch of one read found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Second deliveries of a number the broker did not flag as redelivered.
    pub duplicates: u64,
    /// Second deliveries flagged `redelivered` (a requeue, not a broker fault).
    pub redelivered_again: u64,
    /// Ordered tracks: first deliveries of a number below one already delivered.
    pub out_of_order: u64,
}

/// A delivery's identity, as a worker collects it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// The queue's index; for an ordered tracker, the consumer's.
    pub queue: u16,
    pub seq: u64,
    pub redelivered: bool,
}

#[derive(Debug, Default)]
pub struct Tracker {
    tracks: Mutex<Vec<Track>>,
    /// Per-producer order is checked.
    ordered: bool,
    /// A track starts at the first number seen rather than at 0.
    from_first_seen: bool,
}

/// Missing messages of one (queue, producer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub queue: u16,
    pub producer: u16,
    pub count: u64,
    pub first: Vec<u64>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// For streams: tracks per (consumer, producer), in order. `from_first_seen`: the
    /// consumers read messages published before the run, so a track starts wherever
    /// its consumer started.
    pub fn ordered(from_first_seen: bool) -> Tracker {
        Tracker {
            ordered: true,
            from_first_seen,
            ..Default::default()
        }
    }

    /// Marks a batch of deliveries.
    pub fn apply(&self, batch: &[Seen]) -> Applied {
        let mut out = Applied::default();
        if batch.is_empty() {
            return out;
        }
        let mut tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = usize::MAX;
        for s in batch {
            let producer = (s.seq >> 48) as u16;
            let seq = s.seq & ((1 << 48) - 1);
            let hit = |t: &Track| t.queue == s.queue && t.producer == producer;
            if last >= tracks.len() || !hit(&tracks[last]) {
                last = match tracks.iter().position(hit) {
                    Some(i) => i,
                    None => {
                        let base = if self.from_first_seen { seq } else { 0 };
                        tracks.push(Track::new(s.queue, producer, base));
                        tracks.len() - 1
                    }
                };
            }
            let t = &mut tracks[last];
            let before = t.last;
            if !t.mark(seq) {
                if s.redelivered {
                    out.redelivered_again += 1;
                } else {
                    out.duplicates += 1;
                }
            } else if self.ordered && before.is_some_and(|b| seq < b) {
                out.out_of_order += 1;
            }
        }
        for t in tracks.iter_mut() {
            t.compact();
        }
        out
    }

    /// Distinct messages seen, over all queues and producers.
    pub fn distinct(&self) -> u64 {
        let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        tracks.iter().map(|t| t.distinct).sum()
    }

    /// Per track, the numbers missing below the highest one seen (a stream delivers in
    /// order, so those will not come any more); at most `max_examples` listed per track.
    pub fn gaps(&self, max_examples: usize) -> Vec<Missing> {
        let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for t in tracks.iter() {
            let Some(last) = t.last else { continue };
            let mut first = Vec::new();
            let count = t.missing(last + 1, &mut first, max_examples);
            if count > 0 {
                out.push(Missing {
                    queue: t.queue,
                    producer: t.producer,
                    count,
                    first,
                });
            }
        }
        out.sort_by_key(|m| (m.queue, m.producer));
        out
    }

    /// For each queue in `0..queues` and each producer with `sent[p]` messages sent:
    /// what never arrived (at most `max_examples` numbers listed per stream).
    pub fn missing(&self, queues: u16, sent: &[u64], max_examples: usize) -> Vec<Missing> {
        let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for q in 0..queues {
            for (p, &n) in sent.iter().enumerate() {
                let mut first = Vec::new();
                let count = match tracks
                    .iter()
                    .find(|t| t.queue == q && t.producer as usize == p)
                {
                    Some(t) => t.missing(n, &mut first, max_examples),
                    None => {
                        first.extend(0..n.min(max_examples as u64));
                        n
                    }
                };
                if count > 0 {
                    out.push(Missing {
                        queue: q,
                        producer: p as u16,
                        count,
                        first,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::sequence;

    fn seen(queue: u16, producer: u16, n: u64) -> Seen {
        Seen {
            queue,
            seq: sequence(producer, n),
            redelivered: false,
        }
    }

    #[test]
    fn in_order_stream_compacts_and_nothing_is_missing() {
        let t = Tracker::new();
        let batch: Vec<Seen> = (0..10_000).map(|n| seen(0, 0, n)).collect();
        assert_eq!(t.apply(&batch), Applied::default());
        assert_eq!(t.distinct(), 10_000);
        assert!(t.missing(1, &[10_000], 5).is_empty());
        let words = t.tracks.lock().unwrap()[0].words.len();
        assert!(words <= 2, "{words} words kept");
    }

    #[test]
    fn duplicates_and_gaps_are_found() {
        let t = Tracker::new();
        let mut batch: Vec<Seen> = (0..1000)
            .filter(|&n| n != 700)
            .map(|n| seen(0, 1, n))
            .collect();
        batch.push(seen(0, 1, 5));
        let mut again = seen(0, 1, 6);
        again.redelivered = true;
        batch.push(again);
        let a = t.apply(&batch);
        assert_eq!(a.duplicates, 1);
        assert_eq!(a.redelivered_again, 1);
        // Producer 0 sent 3 messages that never arrived; producer 1 lost 700 and its
        // last two (sent 1002).
        let m = t.missing(1, &[3, 1002], 10);
        assert_eq!(
            m,
            vec![
                Missing {
                    queue: 0,
                    producer: 0,
                    count: 3,
                    first: vec![0, 1, 2]
                },
                Missing {
                    queue: 0,
                    producer: 1,
                    count: 3,
                    first: vec![700, 1000, 1001]
                },
            ]
        );
    }

    #[test]
    fn each_queue_must_see_every_message() {
        let t = Tracker::new();
        let batch: Vec<Seen> = (0..100)
            .map(|n| seen(0, 0, n))
            .chain((0..100).filter(|&n| n != 42).map(|n| seen(1, 0, n)))
            .collect();
        assert_eq!(t.apply(&batch).duplicates, 0);
        let m = t.missing(2, &[100], 10);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].queue, m[0].count, m[0].first.clone()),
            (1, 1, vec![42])
        );
        // A number below the compacted base is still a duplicate.
        assert_eq!(t.apply(&[seen(0, 0, 3)]).duplicates, 1);
    }

    #[test]
    fn ordered_tracks_catch_reordering_per_consumer() {
        let t = Tracker::ordered(false);
        // Consumer 0 gets 0..100 in order; consumer 1 gets 50 and 51 swapped and misses
        // 70; producer 1 interleaves freely with producer 0.
        let mut batch: Vec<Seen> = (0..100).map(|n| seen(0, 0, n)).collect();
        batch.extend((0..100).map(|n| seen(0, 1, n)));
        let mut c1: Vec<u64> = (0..100).filter(|&n| n != 70).collect();
        c1.swap(50, 51);
        batch.extend(c1.iter().map(|&n| seen(1, 0, n)));
        let a = t.apply(&batch);
        assert_eq!(a.out_of_order, 1);
        assert_eq!(a.duplicates, 0);
        let m = t.missing(2, &[100, 100], 5);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!((m[0].queue, m[0].producer, m[0].count), (1, 0, 1));
        // Consumer 1 never saw producer 1.
        assert_eq!((m[1].queue, m[1].producer, m[1].count), (1, 1, 100));
        // Gaps only look below what each consumer saw.
        let g = t.gaps(5);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].queue, g[0].first.clone()), (1, vec![70]));
        // A repeat is a duplicate, not a reordering.
        let a = t.apply(&[seen(0, 0, 99), seen(0, 0, 3)]);
        assert_eq!((a.duplicates, a.out_of_order), (2, 0));
    }

    #[test]
    fn a_replay_starts_where_its_consumer_started() {
        let t = Tracker::ordered(true);
        let batch: Vec<Seen> = (1000..1500)
            .filter(|&n| n != 1234)
            .map(|n| seen(3, 0, n))
            .collect();
        assert_eq!(t.apply(&batch), Applied::default());
        let g = t.gaps(5);
        assert_eq!(g.len(), 1);
        assert_eq!(
            (g[0].queue, g[0].count, g[0].first.clone()),
            (3, 1, vec![1234])
        );
        assert_eq!(t.distinct(), 499);
    }
}
