//! ACK and NACK. The `id` (1.2) or `message-id` (1.0, 1.1) header names the delivery as
//! `<consumer tag>@@<session>@@<delivery tag>`; in `client` mode the ACK also covers
//! every earlier delivery of the connection (`multiple`), as in RabbitMQ. NACK requeues
//! unless `requeue:false` (then the message is dead-lettered, if its queue says where).

use std::collections::HashMap;
use std::sync::Arc;

use warren_core::BrokerError;
use warren_stomp_codec::{Frame, Version};

use crate::connection::{erl, Conn, Fail};
use crate::delivery::Unacked;
use crate::transaction::TxAction;

/// Splits a message id into consumer tag and delivery tag.
fn parse_message_id(id: &str) -> Option<(&str, u64)> {
    let parts: Vec<&str> = id.split("@@").collect();
    match parts.as_slice() {
        [ctag, _session, tag] => Some((ctag, tag.parse().ok()?)),
        _ => None,
    }
}

impl Conn {
    pub(crate) fn ack(&mut self, f: Frame, ack: bool) -> Result<(), Fail> {
        let command = if ack { "ACK" } else { "NACK" };
        let header = if self.version == Version::V1_2 {
            "id"
        } else {
            "message-id"
        };
        let Some(value) = f.header_str(header) else {
            return Err(Fail::error(
                "Missing header",
                format!("{} must include the {} header\n", erl(command), erl(header)),
            ));
        };
        let Some((ctag, tag)) = parse_message_id(value) else {
            return Err(Fail::error(
                "Invalid header",
                format!(
                    "{} must include a valid {} header\n",
                    erl(command),
                    erl(header)
                ),
            ));
        };
        let Some(sub) = self.subs.get(ctag) else {
            return Err(Fail::error(
                "Subscription not found",
                format!("Message with id {} has no subscription", erl(value)),
            ));
        };
        let multiple = sub.multi_ack;
        let requeue = crate::headers::boolean(&f, "requeue") != Some(false);
        if let Some(tx) = f.header_str("transaction") {
            let Some(actions) = self.transactions.get_mut(tx) else {
                return Err(Fail::error(
                    "Bad transaction",
                    format!("Invalid transaction identifier: {}\n", erl(tx)),
                ));
            };
            actions.push(TxAction::Settle {
                ack,
                requeue,
                tag,
                multiple,
                receipt: f.header_str("receipt").map(str::to_string),
            });
            return Ok(());
        }
        self.settle(ack, requeue, tag, multiple)
    }

    /// Acks, requeues or rejects deliveries, giving their consumers credit back.
    pub(crate) fn settle(
        &mut self,
        ack: bool,
        requeue: bool,
        tag: u64,
        multiple: bool,
    ) -> Result<(), Fail> {
        let Some(done) = self.sink.state.lock().take(tag, multiple) else {
            return Err(Fail::broker(BrokerError::precondition_failed(format!(
                "unknown delivery tag {tag}"
            ))));
        };
        let mut by_queue: HashMap<*const warren_core::Queue, Vec<Unacked>> = HashMap::new();
        for u in done {
            by_queue.entry(Arc::as_ptr(&u.queue)).or_default().push(u);
        }
        for (_, us) in by_queue {
            let queue = us[0].queue.clone();
            for u in &us {
                u.consumer.settled(1);
            }
            let envs: Vec<_> = us.into_iter().map(|u| u.env).collect();
            match (ack, requeue) {
                (true, _) => queue.settle(&envs, true),
                (false, true) => queue.requeue(envs),
                (false, false) => queue.reject(envs),
            }
        }
        Ok(())
    }
}
