//! A connection's output: one buffer every producer of frames appends to (the reader with
//! its replies, queues with their deliveries, on whatever task they run), and one writer
//! task that swaps the buffer out and writes it with a single syscall.
//!
//! The writer is woken at most once per batch: appending sets `scheduled` and only the
//! first appender after a write pays for the wake-up. That is what lets thousands of
//! deliveries go out in one `write`.
//!
//! The buffer is bounded for deliveries: above [`HIGH_WATER`] bytes [`Outbound::ready`] says
//! no, queues skip this connection's consumers, and once the writer has drained below
//! [`LOW_WATER`] it asks those queues to dispatch again.
//!
//! Memory: a connection that has nothing to send holds no buffer (a written batch's
//! allocation is kept as the next buffer only up to [`SPARE_MAX`]), so ten thousand mostly
//! idle connections do not each keep the pages their largest batch ever touched.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use warren_amqp_codec::frame::{write_heartbeat, write_method};
use warren_amqp_codec::Method;
use warren_core::Queue;

thread_local! {
    /// Writers to wake when the current batch ends (see [`WakeBatch`]).
    static BATCH: RefCell<Option<Vec<Arc<Outbound>>>> = const { RefCell::new(None) };
}

/// While alive, [`Outbound::schedule_soon`] on this thread defers wake-ups to the guard's
/// drop, so a reader that delivers a whole read buffer of publishes to a consumer wakes
/// that consumer's writer once. Must not be held across an `.await`.
pub struct WakeBatch(());

impl WakeBatch {
    pub fn begin() -> WakeBatch {
        BATCH.with(|b| *b.borrow_mut() = Some(Vec::new()));
        WakeBatch(())
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        let pending = BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default();
        for out in pending {
            out.schedule();
        }
    }
}

pub const HIGH_WATER: usize = 1 << 20;
pub const LOW_WATER: usize = 256 << 10;
/// The largest written buffer kept for the next batch.
pub const SPARE_MAX: usize = 16 << 10;

pub struct Outbound {
    buf: Mutex<BytesMut>,
    queued: AtomicUsize,
    scheduled: AtomicBool,
    wake: Notify,
    /// Set when the connection is finished: the writer flushes what is left and stops.
    closing: AtomicBool,
    /// Set when a full buffer made a queue skip us.
    stalled: AtomicBool,
    /// Queues this connection consumes from, kicked when a stall clears.
    consumed_queues: Mutex<Vec<Arc<Queue>>>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            buf: Mutex::new(BytesMut::new()),
            queued: AtomicUsize::new(0),
            scheduled: AtomicBool::new(false),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            consumed_queues: Mutex::new(Vec::new()),
        }
    }
}

impl Outbound {
    /// Appends frames with `f`, then makes sure the writer will run.
    pub fn write<R>(&self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let r = {
            let mut b = self.buf.lock();
            let r = f(&mut b);
            self.queued.store(b.len(), Ordering::Relaxed);
            r
        };
        self.schedule();
        r
    }

    /// Appends frames without waking the writer (the caller will call [`Self::schedule`]).
    pub fn write_deferred<R>(&self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let mut b = self.buf.lock();
        let r = f(&mut b);
        self.queued.store(b.len(), Ordering::Relaxed);
        r
    }

    pub fn send(&self, channel: u16, m: &Method) {
        self.write(|b| write_method(b, channel, m));
    }

    /// Like [`Self::schedule`], but inside a [`WakeBatch`] the wake-up waits for the end of
    /// the batch.
    pub fn schedule_soon(self: &Arc<Self>) {
        if self.scheduled.load(Ordering::Acquire) {
            return;
        }
        let deferred = BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(pending) => {
                if !pending.iter().any(|o| Arc::ptr_eq(o, self)) {
                    pending.push(self.clone());
                }
                true
            }
            None => false,
        });
        if !deferred {
            self.schedule();
        }
    }

    pub fn schedule(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Whether deliveries may be appended now.
    pub fn ready(&self) -> bool {
        if self.queued.load(Ordering::Relaxed) < HIGH_WATER {
            true
        } else {
            self.stalled.store(true, Ordering::Relaxed);
            false
        }
    }

    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub fn add_consumed_queue(&self, q: Arc<Queue>) {
        self.consumed_queues.lock().push(q);
    }

    pub fn remove_consumed_queue(&self, q: &Arc<Queue>) {
        let mut v = self.consumed_queues.lock();
        if let Some(i) = v.iter().position(|x| Arc::ptr_eq(x, q)) {
            v.swap_remove(i);
        }
    }

    /// The writer task: runs until the connection closes and everything queued is written.
    /// Sends a heartbeat whenever nothing was written for `heartbeat`.
    pub async fn run_writer<W: tokio::io::AsyncWrite + Unpin>(
        self: Arc<Self>,
        mut sock: W,
        heartbeat: Duration,
    ) {
        let mut spare = BytesMut::new();
        let mut last_write = Instant::now();
        loop {
            let closing = self.is_closing();
            let mut data = {
                let mut b = self.buf.lock();
                self.scheduled.store(false, Ordering::Release);
                self.queued.store(0, Ordering::Relaxed);
                std::mem::replace(&mut *b, spare)
            };
            if data.is_empty() && !heartbeat.is_zero() && last_write.elapsed() >= heartbeat {
                write_heartbeat(&mut data);
            }
            if !data.is_empty() {
                if sock.write_all(&data).await.is_err() {
                    // The peer is gone; the reader notices on its side.
                    self.closing.store(true, Ordering::Release);
                    return;
                }
                last_write = Instant::now();
                data.clear();
            }
            spare = if data.capacity() > SPARE_MAX {
                BytesMut::new()
            } else {
                data
            };
            if self.stalled.load(Ordering::Relaxed)
                && self.queued.load(Ordering::Relaxed) < LOW_WATER
            {
                self.stalled.store(false, Ordering::Relaxed);
                let queues = self.consumed_queues.lock().clone();
                for q in queues {
                    q.dispatch();
                }
            }
            if closing {
                let _ = sock.shutdown().await;
                return;
            }
            if self.scheduled.load(Ordering::Acquire) {
                continue;
            }
            if heartbeat.is_zero() {
                self.wake.notified().await;
            } else {
                let due = heartbeat.saturating_sub(last_write.elapsed());
                let _ = tokio::time::timeout(due, self.wake.notified()).await;
            }
        }
    }
}
