//! A connection's output: one buffer every producer of frames appends to (the reader
//! with its replies, queues with their deliveries, on whatever task they run), and one
//! writer task that swaps the buffer out and writes it with a single syscall.
//!
//! This is the AMQP adapter's pattern (its `outbound.rs`), protocol-free: the writer is
//! woken at most once per batch (appending sets `scheduled` and only the first appender
//! after a write pays for the wake-up), and inside a [`WakeBatch`] a reader that delivers
//! a whole read buffer of publishes to other connections wakes each of their writers
//! once. Above [`HIGH_WATER`] bytes [`Outbound::ready`] says no, so queues skip this
//! connection's consumers, and once the writer has drained below [`LOW_WATER`] it asks
//! those queues to dispatch again: no buffer grows without bound.
//!
//! Memory: a connection that has nothing to send holds no buffer at all (a spare larger
//! than [`SPARE_MAX`] is dropped after each write), which is what lets ten thousand idle
//! MQTT connections fit in little memory.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;
use warren_core::Queue;

use crate::transport::Writer;

thread_local! {
    /// Writers to wake when the current batch ends (see [`WakeBatch`]).
    static BATCH: RefCell<Option<Vec<Arc<Outbound>>>> = const { RefCell::new(None) };
}

/// While alive, [`Outbound::schedule_soon`] on this thread defers wake-ups to the guard's
/// drop. Must not be held across an `.await`.
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
/// The largest buffer kept between writes.
pub const SPARE_MAX: usize = 16 << 10;

#[derive(Default)]
struct Pending {
    data: BytesMut,
    /// End offsets of the frames in `data` (only when frames are tracked).
    frames: Vec<usize>,
}

pub struct Outbound {
    buf: Mutex<Pending>,
    /// Record frame boundaries (a WebSocket that sends one message per frame).
    track_frames: bool,
    queued: AtomicUsize,
    scheduled: AtomicBool,
    wake: Notify,
    /// Set when the connection is finished: the writer flushes what is left and stops.
    closing: AtomicBool,
    /// Set when the writer could not write: the peer is gone.
    failed: AtomicBool,
    /// Set when a full buffer made a queue skip us.
    stalled: AtomicBool,
    /// Queues this connection consumes from, kicked when a stall clears.
    consumed_queues: Mutex<Vec<Arc<Queue>>>,
}

impl Outbound {
    pub fn new(track_frames: bool) -> Outbound {
        Outbound {
            buf: Mutex::new(Pending::default()),
            track_frames,
            queued: AtomicUsize::new(0),
            scheduled: AtomicBool::new(false),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            consumed_queues: Mutex::new(Vec::new()),
        }
    }

    /// Appends one frame with `f` (which may write nothing), then makes sure the writer
    /// will run.
    pub fn write<R>(&self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let r = self.write_deferred(f);
        self.schedule();
        r
    }

    /// Appends one frame without waking the writer (the caller will call
    /// [`Self::schedule`] or [`Self::schedule_soon`]).
    pub fn write_deferred<R>(&self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let mut p = self.buf.lock();
        let before = p.data.len();
        let r = f(&mut p.data);
        let after = p.data.len();
        if self.track_frames && after > before {
            p.frames.push(after);
        }
        self.queued.store(after, Ordering::Relaxed);
        r
    }

    /// Like [`Self::schedule`], but inside a [`WakeBatch`] the wake-up waits for the end
    /// of the batch.
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
        if self.failed.load(Ordering::Relaxed) {
            return false;
        }
        if self.queued.load(Ordering::Relaxed) < HIGH_WATER {
            true
        } else {
            self.stalled.store(true, Ordering::Relaxed);
            false
        }
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Asks the writer to write what is queued, close the sending side, and stop.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Whether a write failed (the peer is gone).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn add_consumed_queue(&self, q: Arc<Queue>) {
        let mut v = self.consumed_queues.lock();
        if !v.iter().any(|x| Arc::ptr_eq(x, &q)) {
            v.push(q);
        }
    }

    pub fn remove_consumed_queue(&self, q: &Arc<Queue>) {
        let mut v = self.consumed_queues.lock();
        if let Some(i) = v.iter().position(|x| Arc::ptr_eq(x, q)) {
            v.swap_remove(i);
        }
    }

    /// The writer task: runs until the connection closes and everything queued is
    /// written. With `idle = Some((interval, bytes))` it sends `bytes` whenever nothing
    /// was written for `interval` (STOMP heart-beats).
    pub async fn run_writer(
        self: Arc<Self>,
        mut w: Writer,
        idle: Option<(Duration, &'static [u8])>,
    ) {
        let mut spare = BytesMut::new();
        let mut frames_spare = Vec::new();
        let mut last_write = Instant::now();
        loop {
            let closing = self.is_closing();
            let (mut data, frames) = {
                let mut p = self.buf.lock();
                self.scheduled.store(false, Ordering::Release);
                self.queued.store(0, Ordering::Relaxed);
                let data = std::mem::replace(&mut p.data, spare);
                let frames = std::mem::replace(&mut p.frames, frames_spare);
                (data, frames)
            };
            if data.is_empty() {
                if let Some((every, bytes)) = idle {
                    if last_write.elapsed() >= every {
                        data.extend_from_slice(bytes);
                    }
                }
            }
            spare = if !data.is_empty() {
                let out = data.split().freeze();
                if w.write(out, &frames).await.is_err() {
                    // The peer is gone; the reader notices on its side.
                    self.failed.store(true, Ordering::Release);
                    self.closing.store(true, Ordering::Release);
                    return;
                }
                last_write = Instant::now();
                // The frozen batch shared `data`'s allocation; once written it is
                // ours again unless it was bigger than we keep around.
                if data.capacity() > SPARE_MAX {
                    BytesMut::new()
                } else {
                    data
                }
            } else {
                data
            };
            frames_spare = frames;
            frames_spare.clear();
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
                w.shutdown().await;
                return;
            }
            if self.scheduled.load(Ordering::Acquire) {
                continue;
            }
            match idle {
                None => self.wake.notified().await,
                Some((every, _)) => {
                    let due = every.saturating_sub(last_write.elapsed());
                    let _ = tokio::time::timeout(due, self.wake.notified()).await;
                }
            }
        }
    }
}
