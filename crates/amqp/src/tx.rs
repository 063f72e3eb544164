//! Transactions: publishes and acks are held back until `tx.commit` and dropped (acks
//! restored to the unacked list) on `tx.rollback`.

use warren_amqp_codec::methods::*;
use warren_core::{BrokerError, Result};

use crate::channel::{Channel, Outcome};
use crate::confirms::Outcome as ConfirmOutcome;
use crate::connection::ConnCtx;
use crate::delivery::Unacked;
use crate::publish::Publish;

#[derive(Default)]
pub(crate) struct Tx {
    pub publishes: Vec<Publish>,
    pub acks: Vec<(Vec<Unacked>, Outcome)>,
}

impl Tx {
    /// The deliveries this transaction would have settled (for channel close).
    pub fn into_pending_acks(self) -> Vec<Unacked> {
        self.acks.into_iter().flat_map(|(u, _)| u).collect()
    }
}

impl Channel {
    pub(crate) fn tx_select(&mut self, ctx: &ConnCtx) -> Result<()> {
        if self.confirm.is_some() {
            return Err(BrokerError::precondition_failed(
                "cannot switch from confirm to tx mode",
            ));
        }
        if self.tx.is_none() {
            self.tx = Some(Tx::default());
        }
        self.send(ctx, TxSelectOk {});
        Ok(())
    }

    pub(crate) fn tx_commit(&mut self, ctx: &ConnCtx) -> Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(BrokerError::precondition_failed(
                "channel is not transactional",
            ));
        };
        let tx = std::mem::take(tx);
        let mut sync: Option<u64> = None;
        for p in tx.publishes {
            if let ConfirmOutcome::AfterSync(e) = self.route_and_enqueue(ctx, p) {
                sync = Some(sync.map_or(e, |s| s.max(e)));
            }
        }
        for (done, outcome) in tx.acks {
            self.settle(done, outcome);
        }
        match sync {
            // commit-ok only once the transaction's persistent messages are on disk.
            Some(e) if e > ctx.committer.done() => self.commit_waiting = Some(e),
            _ => self.send(ctx, TxCommitOk {}),
        }
        Ok(())
    }

    pub(crate) fn tx_rollback(&mut self, ctx: &ConnCtx) -> Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(BrokerError::precondition_failed(
                "channel is not transactional",
            ));
        };
        let tx = std::mem::take(tx);
        let back = tx.into_pending_acks();
        if !back.is_empty() {
            self.shared.state.lock().restore(back);
        }
        self.send(ctx, TxRollbackOk {});
        Ok(())
    }
}
