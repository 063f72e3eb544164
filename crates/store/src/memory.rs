//! The in-memory queue store: a deque of ready envelopes in sequence order.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::{Envelope, Loc, Message, Pushed, QueueStore, SeqNo};

#[derive(Default)]
pub struct MemoryQueueStore {
    next_seq: SeqNo,
    ready: VecDeque<Envelope>,
    ready_bytes: u64,
}

impl MemoryQueueStore {
    pub fn new() -> MemoryQueueStore {
        MemoryQueueStore::default()
    }
}

impl QueueStore for MemoryQueueStore {
    fn push(&mut self, msg: Arc<Message>, expires_at: Option<u64>) -> std::io::Result<Pushed> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ready_bytes += msg.size();
        self.ready.push_back(Envelope {
            seq,
            msg,
            redelivered: false,
            expires_at,
            loc: Loc::default(),
            delivery_count: 0,
        });
        Ok(Pushed {
            seq,
            loc: Loc::default(),
            sync: None,
        })
    }

    fn pop(&mut self) -> Option<Envelope> {
        let env = self.ready.pop_front()?;
        self.ready_bytes -= env.msg.size();
        Some(env)
    }

    fn peek_expiry(&mut self) -> Option<Option<u64>> {
        self.ready.front().map(|e| e.expires_at)
    }

    fn remove(&mut self, seq: SeqNo, _loc: Loc) -> Option<Envelope> {
        let i = self.ready.binary_search_by_key(&seq, |e| e.seq).ok()?;
        let env = self.ready.remove(i)?;
        self.ready_bytes -= env.msg.size();
        Some(env)
    }

    fn settle(&mut self, _env: &Envelope) {}

    fn requeue(&mut self, env: Envelope) {
        self.ready_bytes += env.msg.size();
        // Requeued messages are older than any ready one in the common case, so this is
        // a push at (or near) the front.
        let at = self.ready.partition_point(|e| e.seq < env.seq);
        self.ready.insert(at, env);
    }

    fn purge(&mut self) -> u64 {
        let n = self.ready.len() as u64;
        self.ready.clear();
        self.ready_bytes = 0;
        n
    }

    fn ready_count(&self) -> u64 {
        self.ready.len() as u64
    }

    fn ready_bytes(&self) -> u64 {
        self.ready_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warren_amqp_codec::PropertiesView;

    fn msg(body: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            Bytes::from_static(&[0, 0]),
            &PropertiesView::default(),
            Bytes::from_static(body),
        ))
    }

    #[test]
    fn requeued_messages_return_to_their_place() {
        let mut s = MemoryQueueStore::new();
        for b in [&b"a"[..], b"b", b"c", b"d"] {
            s.push(msg(b), None).unwrap();
        }
        let a = s.pop().unwrap();
        let b = s.pop().unwrap();
        let mut c = s.pop().unwrap();
        let mut a = a;
        c.redelivered = true;
        a.redelivered = true;
        s.requeue(c);
        s.requeue(a);
        let order: Vec<_> = std::iter::from_fn(|| s.pop())
            .map(|e| (e.msg.body.clone(), e.redelivered))
            .collect();
        assert_eq!(
            order,
            vec![
                (Bytes::from_static(b"a"), true),
                (Bytes::from_static(b"c"), true),
                (Bytes::from_static(b"d"), false)
            ]
        );
        s.settle(&b);
        assert_eq!(s.ready_bytes(), 0);
    }
}
