//! Sessions beyond a single connection: the client id registry, and what happens after
//! a connection ends (a delayed will, a session that expires).
//!
//! - Takeover: a client id is connected at most once per vhost. A new connection with a
//!   client id in use kicks the old one and waits for it to finish (its in-flight
//!   messages requeued, its consumer gone) before resuming the session, so the session
//!   is never consumed twice.
//! - After a connection ends, its session may live on (until its MQTT 5 Session Expiry
//!   Interval passes; a 3.x persistent session never expires, as in RabbitMQ 3.10), and
//!   its will may wait (MQTT 5 Will Delay Interval). Both are cancelled when the client
//!   reconnects. Session expiries are written to `<data dir>/mqtt-sessions.json`
//!   (atomically: temporary file, fsync, rename), so a session still expires on time
//!   after a broker restart. A will that was waiting for its delay when the broker
//!   stopped is not sent.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use warren_core::scheduler::now_ms;

use crate::connect::WillMsg;
use crate::listener::Mqtt;

/// (vhost, client id)
pub type Key = (String, String);

/// A connected client, as the registry knows it.
pub struct Live {
    /// Tells the connection it has been taken over.
    pub kick: Notify,
    /// Turns true once the connection has released its session.
    pub done: watch::Sender<bool>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live {
            kick: Notify::new(),
            done: watch::channel(false).0,
        })
    }
}

/// What waits after a connection ended.
struct Pending {
    will: Option<WillMsg>,
    task: JoinHandle<()>,
    /// Tells this arming from a later one for the same key (an aborted task may still
    /// be finishing when its replacement is inserted).
    generation: u64,
}

pub struct Sessions {
    live: Mutex<HashMap<Key, Arc<Live>>>,
    pending: Mutex<HashMap<Key, Pending>>,
    /// Session expiry deadlines (ms since the epoch) of disconnected sessions.
    expiries: Mutex<HashMap<Key, (String, u64)>>,
    path: PathBuf,
    generation: std::sync::atomic::AtomicU64,
}

impl Sessions {
    pub fn new(data_dir: &Path) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            expiries: Mutex::new(HashMap::new()),
            path: data_dir.join("mqtt-sessions.json"),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Re-arms the session expiries a previous run left (at start-up).
    pub fn recover(&self, mqtt: &Arc<Mqtt>) {
        let Ok(raw) = fs::read(&self.path) else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw) else {
            tracing::warn!(path = %self.path.display(), "unreadable MQTT session expiry file; ignoring it");
            return;
        };
        let now = now_ms();
        for e in v.as_array().into_iter().flatten() {
            let (Some(vhost), Some(client_id), Some(queue), Some(at)) = (
                e["vhost"].as_str(),
                e["client_id"].as_str(),
                e["queue"].as_str(),
                e["expires_at"].as_u64(),
            ) else {
                continue;
            };
            let key = (vhost.to_string(), client_id.to_string());
            let after = Duration::from_millis(at.saturating_sub(now));
            self.schedule_end(mqtt, key, None, Some((queue.to_string(), after)));
        }
    }

    /// Registers a new connection for `key`, taking the session over from a connection
    /// that has it: that one is told to go, and we wait (a bounded time) until it has.
    pub async fn claim(&self, key: &Key, me: Arc<Live>) {
        let old = self.live.lock().insert(key.clone(), me);
        if let Some(old) = old {
            old.kick.notify_one();
            let mut done = old.done.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
        }
    }

    /// Forgets a connection that ended (unless another has taken its place).
    pub fn release(&self, key: &Key, me: &Arc<Live>) {
        let mut live = self.live.lock();
        if live.get(key).is_some_and(|l| Arc::ptr_eq(l, me)) {
            live.remove(key);
        }
        drop(live);
        me.done.send_replace(true);
    }

    /// Cancels what waited for `key` to come back. Returns the will that was waiting:
    /// a caller that starts a new session (ending the old one) must send it, one that
    /// resumes the session must not.
    pub fn cancel_pending(&self, key: &Key) -> Option<WillMsg> {
        let p = self.pending.lock().remove(key)?;
        p.task.abort();
        if self.expiries.lock().remove(key).is_some() {
            self.persist();
        }
        p.will
    }

    /// Arms what follows a connection's end: `will` (with its delay) and the session's
    /// expiry (`None`: it never expires, or it has already been deleted).
    pub fn schedule_end(
        &self,
        mqtt: &Arc<Mqtt>,
        key: Key,
        will: Option<(WillMsg, Duration)>,
        expiry: Option<(String, Duration)>,
    ) {
        if will.is_none() && expiry.is_none() {
            return;
        }
        if let Some((queue, after)) = &expiry {
            let at = now_ms() + after.as_millis() as u64;
            self.expiries
                .lock()
                .insert(key.clone(), (queue.clone(), at));
            self.persist();
        }
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let m = mqtt.clone();
        let k = key.clone();
        let w = will.clone();
        // Holding the pending map's lock across the spawn and the insert keeps the task
        // from looking itself up before it is there.
        let mut pending = self.pending.lock();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let end_at = expiry.as_ref().map(|(_, d)| start + *d);
            if let Some((will, delay)) = w {
                // The will goes at its delay, or when the session ends if that is sooner.
                let at = match end_at {
                    Some(e) => (start + delay).min(e),
                    None => start + delay,
                };
                tokio::time::sleep_until(at).await;
                crate::publish::publish_will(&m, &will);
                if let Some(p) = m.sessions.pending.lock().get_mut(&k) {
                    if p.generation == generation {
                        p.will = None;
                    }
                }
            }
            if let (Some((queue, _)), Some(at)) = (expiry, end_at) {
                tokio::time::sleep_until(at).await;
                if let Some(vhost) = m.broker.vhost(&k.0) {
                    match vhost.delete_queue(&queue, false, false, 0) {
                        Ok(n) => {
                            tracing::info!(client_id = %k.1, vhost = %k.0, messages = n, "MQTT session expired")
                        }
                        Err(e) => {
                            tracing::warn!(client_id = %k.1, error = %e, "cannot delete an expired MQTT session")
                        }
                    }
                }
                if m.sessions.expiries.lock().remove(&k).is_some() {
                    m.sessions.persist();
                }
            }
            let mut pending = m.sessions.pending.lock();
            if pending.get(&k).is_some_and(|p| p.generation == generation) {
                pending.remove(&k);
            }
        });
        let will = will.map(|(w, _)| w);
        let new = Pending {
            will,
            task,
            generation,
        };
        if let Some(old) = pending.insert(key, new) {
            old.task.abort();
        }
    }

    /// Writes the session expiries atomically.
    fn persist(&self) {
        let entries: Vec<serde_json::Value> = self
            .expiries
            .lock()
            .iter()
            .map(|((vhost, client_id), (queue, at))| {
                serde_json::json!({"vhost": vhost, "client_id": client_id, "queue": queue, "expires_at": at})
            })
            .collect();
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(serde_json::to_string(&entries)?.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write MQTT session expiries");
        }
    }
}
