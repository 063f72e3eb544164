//! Priority queues (`x-max-priority`): one store per priority level, created when a level
//! is first used. The highest non-empty level is served first, FIFO within a level, as
//! RabbitMQ does. A message's level is its `priority` property, capped at the queue's
//! maximum; each envelope's location carries its level (`Loc::part`) so settling,
//! requeueing and expiry reach the right store.

use std::io;
use std::sync::Arc;

use crate::{Envelope, Loc, Message, Pushed, QueueStore, SeqNo};

/// Opens the store for one level (recovering it, for a durable queue).
pub type LevelOpener = Box<dyn Fn(u8) -> io::Result<Box<dyn QueueStore>> + Send>;

pub struct PriorityStore {
    levels: Vec<Option<Box<dyn QueueStore>>>,
    max: u8,
    open: LevelOpener,
}

impl PriorityStore {
    /// `existing` lists the levels that already have data (found at recovery).
    pub fn open(max: u8, existing: &[u8], open: LevelOpener) -> io::Result<PriorityStore> {
        let mut s = PriorityStore {
            levels: (0..=max).map(|_| None).collect(),
            max,
            open,
        };
        for &l in existing {
            if l <= max {
                s.level(l)?;
            }
        }
        Ok(s)
    }

    fn level(&mut self, l: u8) -> io::Result<&mut Box<dyn QueueStore>> {
        let slot = &mut self.levels[l as usize];
        if slot.is_none() {
            *slot = Some((self.open)(l)?);
        }
        Ok(slot.as_mut().expect("just opened"))
    }

    fn existing(&mut self, part: u16) -> Option<&mut Box<dyn QueueStore>> {
        self.levels.get_mut(part as usize)?.as_mut()
    }

    /// Levels from the highest down that hold ready messages.
    fn highest_ready(&self) -> Option<usize> {
        (0..self.levels.len())
            .rev()
            .find(|&l| self.levels[l].as_ref().is_some_and(|s| s.ready_count() > 0))
    }

    fn tag(mut env: Envelope, level: usize) -> Envelope {
        env.loc.part = level as u16;
        env
    }
}

impl QueueStore for PriorityStore {
    fn push(&mut self, msg: Arc<Message>, expires_at: Option<u64>) -> io::Result<Pushed> {
        let level = msg.priority.min(self.max);
        let mut p = self.level(level)?.push(msg, expires_at)?;
        p.loc.part = level as u16;
        Ok(p)
    }

    fn pop(&mut self) -> Option<Envelope> {
        let l = self.highest_ready()?;
        let env = self.levels[l].as_mut()?.pop()?;
        Some(Self::tag(env, l))
    }

    fn peek_expiry(&mut self) -> Option<Option<u64>> {
        let l = self.highest_ready()?;
        self.levels[l].as_mut()?.peek_expiry()
    }

    fn remove(&mut self, seq: SeqNo, loc: Loc) -> Option<Envelope> {
        let env = self.existing(loc.part)?.remove(seq, loc)?;
        Some(Self::tag(env, loc.part as usize))
    }

    fn settle(&mut self, env: &Envelope) {
        if let Some(s) = self.existing(env.loc.part) {
            s.settle(env);
        }
    }

    fn requeue(&mut self, env: Envelope) {
        let part = env.loc.part;
        match self.existing(part) {
            Some(s) => s.requeue(env),
            None => tracing::error!(
                level = part,
                "requeue to a priority level that does not exist"
            ),
        }
    }

    fn purge(&mut self) -> u64 {
        self.levels.iter_mut().flatten().map(|s| s.purge()).sum()
    }

    fn ready_count(&self) -> u64 {
        self.levels.iter().flatten().map(|s| s.ready_count()).sum()
    }

    fn ready_bytes(&self) -> u64 {
        self.levels.iter().flatten().map(|s| s.ready_bytes()).sum()
    }

    fn recovered_expiries(&mut self) -> Vec<(u64, SeqNo, Loc)> {
        let mut out = Vec::new();
        for (l, s) in self.levels.iter_mut().enumerate() {
            if let Some(s) = s {
                out.extend(
                    s.recovered_expiries()
                        .into_iter()
                        .map(|(at, seq, mut loc)| {
                            loc.part = l as u16;
                            (at, seq, loc)
                        }),
                );
            }
        }
        out
    }

    fn destroy(&mut self) {
        for s in self.levels.iter_mut().flatten() {
            s.destroy();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryQueueStore;
    use bytes::Bytes;
    use warren_amqp_codec::{BasicProperties, PropertiesView};

    fn msg(body: &str, priority: u8) -> Arc<Message> {
        let props = BasicProperties {
            priority: Some(priority),
            ..Default::default()
        }
        .to_bytes();
        let view = PropertiesView::parse(&props).unwrap();
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            props,
            &view,
            Bytes::copy_from_slice(body.as_bytes()),
        ))
    }

    #[test]
    fn highest_priority_first_fifo_within_and_capped_at_max() {
        let mut s = PriorityStore::open(
            5,
            &[],
            Box::new(|_| Ok(Box::new(MemoryQueueStore::new()) as Box<dyn QueueStore>)),
        )
        .unwrap();
        for (b, p) in [("a", 1), ("b", 9), ("c", 0), ("d", 5), ("e", 1), ("f", 5)] {
            s.push(msg(b, p), None).unwrap();
        }
        assert_eq!(s.ready_count(), 6);
        let first = s.pop().unwrap();
        // b had priority 9, capped at 5: it shares level 5 with d and f, and came first.
        assert_eq!(&first.msg.body[..], b"b");
        let mut rest: Vec<Envelope> = std::iter::from_fn(|| s.pop()).collect();
        let order: Vec<&[u8]> = rest.iter().map(|e| &e.msg.body[..]).collect();
        assert_eq!(order, vec![&b"d"[..], b"f", b"a", b"e", b"c"]);
        // A requeued low-priority message goes back to its level, behind higher ones.
        let c = rest.pop().unwrap();
        s.requeue(c);
        s.push(msg("g", 3), None).unwrap();
        let order: Vec<Bytes> = std::iter::from_fn(|| s.pop())
            .map(|e| e.msg.body.clone())
            .collect();
        assert_eq!(
            order,
            vec![Bytes::from_static(b"g"), Bytes::from_static(b"c")]
        );
    }
}
