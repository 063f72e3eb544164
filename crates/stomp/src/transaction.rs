//! BEGIN, COMMIT and ABORT: a transaction buffers its SENDs, ACKs and NACKs until
//! COMMIT performs them in order (RabbitMQ's STOMP transactions do the same, in the
//! adapter rather than with AMQP `tx`). As in RabbitMQ, the RECEIPTs those frames ask
//! for are sent when COMMIT performs them, after COMMIT's own, and never after ABORT.

use warren_stomp_codec::Frame;

use crate::connection::{erl, Conn, Fail};
use crate::send::Outgoing;

pub(crate) enum TxAction {
    /// A SEND, and its `receipt` header.
    Send(Outgoing, Option<String>),
    /// (ACK or NACK, requeue, the delivery tag, multiple), and the `receipt` header.
    Settle {
        ack: bool,
        requeue: bool,
        tag: u64,
        multiple: bool,
        receipt: Option<String>,
    },
}

fn transaction<'a>(f: &'a Frame, command: &str) -> Result<&'a str, Fail> {
    f.header_str("transaction").ok_or_else(|| {
        Fail::error(
            "Missing transaction",
            format!("{} must include a 'transaction' header\n", erl(command)),
        )
    })
}

fn bad(tx: &str) -> Fail {
    Fail::error(
        "Bad transaction",
        format!("Invalid transaction identifier: {}\n", erl(tx)),
    )
}

impl Conn {
    pub(crate) fn begin(&mut self, f: Frame) -> Result<(), Fail> {
        let tx = transaction(&f, "BEGIN")?;
        self.transactions.insert(tx.to_string(), Vec::new());
        Ok(())
    }

    /// Performs the transaction. Its receipt waits for the last persistent SEND's fsync.
    pub(crate) fn commit(&mut self, f: Frame) -> Result<Option<u64>, Fail> {
        let tx = transaction(&f, "COMMIT")?;
        let actions = self.transactions.remove(tx).ok_or_else(|| bad(tx))?;
        let mut sync = None;
        for a in actions {
            let receipt = match a {
                TxAction::Send(o, receipt) => {
                    if let Some(e) = self.publish(o)? {
                        sync = Some(sync.map_or(e, |s: u64| s.max(e)));
                    }
                    receipt
                }
                TxAction::Settle {
                    ack,
                    requeue,
                    tag,
                    multiple,
                    receipt,
                } => {
                    self.settle(ack, requeue, tag, multiple)?;
                    receipt
                }
            };
            self.tx_receipts.extend(receipt);
        }
        Ok(sync)
    }

    pub(crate) fn abort(&mut self, f: Frame) -> Result<(), Fail> {
        let tx = transaction(&f, "ABORT")?;
        self.transactions
            .remove(tx)
            .map(|_| ())
            .ok_or_else(|| bad(tx))
    }
}
