//! Publisher confirms: sequence numbers per channel from 1, and when to tell the client.
//!
//! A publish settles at once (routed to memory-only destinations, unroutable, or refused:
//! ack or nack), or after a group-commit epoch (a persistent message in a durable queue:
//! its ack waits for the fsync). Confirms go out at the end of each read batch, and when
//! an epoch completes. Acks for a run of consecutive settled sequence numbers at the head
//! become one `multiple` ack; anything settled behind a message still waiting for its
//! fsync is acked on its own, because a `multiple` ack would cover the waiting one too.

use std::collections::VecDeque;
use std::sync::Arc;

use warren_amqp_codec::methods::{BasicAck, BasicNack};
use warren_amqp_codec::Method;
use warren_core::registry::ChannelEntry;

/// What became of one publish, for its confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ack,
    Nack,
    /// Ack once this commit epoch is done.
    AfterSync(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting(u64),
    Ack,
    Nack,
    /// Told to the client already (out of order).
    Sent,
}

pub(crate) struct Confirms {
    next_seq: u64,
    /// Unconfirmed (or confirmed-but-unsent) publishes in sequence order.
    pending: VecDeque<(u64, State)>,
    waiting: usize,
    /// Where the management API reads the count of confirmed publishes.
    stats: Option<Arc<ChannelEntry>>,
}

impl Confirms {
    pub fn new() -> Confirms {
        Confirms {
            next_seq: 1,
            pending: VecDeque::new(),
            waiting: 0,
            stats: None,
        }
    }

    /// Looks up the channel's registry entry once, at the first publish.
    pub fn attach_stats(&mut self, find: impl FnOnce() -> Option<Arc<ChannelEntry>>) {
        if self.stats.is_none() {
            self.stats = find();
        }
    }

    pub fn record(&mut self, outcome: Outcome) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let st = match outcome {
            Outcome::Ack => State::Ack,
            Outcome::Nack => State::Nack,
            Outcome::AfterSync(e) => {
                self.waiting += 1;
                State::Waiting(e)
            }
        };
        self.pending.push_back((seq, st));
    }

    /// Whether a publish still waits for an fsync.
    pub fn waiting(&self) -> bool {
        self.waiting > 0
    }

    /// Whether something can be sent now, given the last completed epoch.
    pub fn ready(&self, done: u64) -> bool {
        self.pending.iter().any(|(_, st)| match st {
            State::Waiting(e) => *e <= done,
            State::Ack | State::Nack => true,
            State::Sent => false,
        })
    }

    /// Emits every confirm that can go out now.
    pub fn flush(&mut self, done: u64, mut emit: impl FnMut(Method)) {
        if self.waiting > 0 {
            for (_, st) in self.pending.iter_mut() {
                if let State::Waiting(e) = *st {
                    if e > done {
                        // Later publishes never have earlier epochs.
                        break;
                    }
                    *st = State::Ack;
                    self.waiting -= 1;
                }
            }
        }
        // The settled head: one multiple ack per run of acks.
        let (mut last, mut fresh, mut run) = (0u64, 0usize, 0usize);
        let mut confirmed = 0u64;
        let ack = |last: u64, run: usize| -> Method {
            BasicAck {
                delivery_tag: last,
                multiple: run > 1,
            }
            .into()
        };
        while let Some(&(seq, st)) = self.pending.front() {
            match st {
                State::Waiting(_) => break,
                State::Ack | State::Sent => {
                    last = seq;
                    run += 1;
                    fresh += (st == State::Ack) as usize;
                    confirmed += (st == State::Ack) as u64;
                }
                State::Nack => {
                    if fresh > 0 {
                        emit(ack(last, run));
                    }
                    (fresh, run) = (0, 0);
                    emit(
                        BasicNack {
                            delivery_tag: seq,
                            multiple: false,
                            requeue: false,
                        }
                        .into(),
                    );
                }
            }
            self.pending.pop_front();
        }
        if fresh > 0 {
            emit(ack(last, run));
        }
        // Settled behind a waiting publish: one by one.
        for (seq, st) in self.pending.iter_mut() {
            let m: Method = match *st {
                State::Ack => {
                    confirmed += 1;
                    BasicAck {
                        delivery_tag: *seq,
                        multiple: false,
                    }
                    .into()
                }
                State::Nack => BasicNack {
                    delivery_tag: *seq,
                    multiple: false,
                    requeue: false,
                }
                .into(),
                _ => continue,
            };
            emit(m);
            *st = State::Sent;
        }
        if let (Some(s), true) = (&self.stats, confirmed > 0) {
            s.count_confirmed(confirmed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush(c: &mut Confirms, done: u64) -> Vec<String> {
        let mut out = Vec::new();
        c.flush(done, |m| {
            out.push(match m {
                Method::BasicAck(a) => format!(
                    "ack {}{}",
                    a.delivery_tag,
                    if a.multiple { "+" } else { "" }
                ),
                Method::BasicNack(n) => format!("nack {}", n.delivery_tag),
                _ => unreachable!(),
            })
        });
        out
    }

    #[test]
    fn immediate_runs_coalesce_and_nacks_stand_alone() {
        let mut c = Confirms::new();
        for o in [Outcome::Ack, Outcome::Ack, Outcome::Nack, Outcome::Ack] {
            c.record(o);
        }
        assert_eq!(flush(&mut c, 0), vec!["ack 2+", "nack 3", "ack 4"]);
        assert!(flush(&mut c, 0).is_empty());
    }

    #[test]
    fn a_waiting_publish_holds_back_multiple_acks() {
        let mut c = Confirms::new();
        c.record(Outcome::AfterSync(5));
        c.record(Outcome::Ack);
        c.record(Outcome::AfterSync(5));
        assert_eq!(flush(&mut c, 4), vec!["ack 2"]);
        assert!(c.waiting());
        assert_eq!(flush(&mut c, 5), vec!["ack 3+"]);
        assert!(!c.waiting());
    }
}
