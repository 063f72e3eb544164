//! The registry of live client connections, their channels, and the figures the
//! management API and the metrics report about them.
//!
//! Every protocol adapter registers a connection once its handshake succeeded and
//! deregisters it when it ends; it adds and removes channels as they open and close. The
//! management API reads the registry (listing connections, channels, consumers) and uses
//! it to force-close a connection with a reason ([`ConnectionEntry::force_close`]), which
//! the adapter's reader loop answers like a broker shutdown: `connection.close` with
//! `CONNECTION_FORCED`.
//!
//! Hot-path cost: a publish bumps one relaxed atomic on its channel's entry (confirms and
//! unroutable messages one more). Byte and packet counts are not counted at all: they are
//! read from the kernel ([`ConnectionEntry::socket_stats`], `TCP_INFO`) when someone
//! asks, so reading and writing sockets costs nothing extra.
//!
//! Queue churn ([`QueueChurn`]) is counted here too: vhosts reach it through the storage
//! handle they share with the broker.
//!
//! Lock order: the connection map, then a connection's channel map. Neither is held
//! while calling anything else.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::ConnectionId;

/// What an adapter knows about a connection when it registers it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub id: ConnectionId,
    /// "AMQP 0-9-1", "MQTT 3.1.1", "STOMP 1.2": RabbitMQ's `protocol` field.
    pub protocol: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub user: String,
    pub vhost: String,
    pub auth_mechanism: String,
    /// The client's properties as JSON (RabbitMQ's `client_properties`).
    pub client_properties: serde_json::Value,
    pub frame_max: u32,
    pub channel_max: u16,
    /// Negotiated heartbeat interval in seconds (RabbitMQ's `timeout`).
    pub heartbeat: u16,
    /// The raw file descriptor of the socket, for `TCP_INFO` (None: not a TCP socket).
    pub fd: Option<i32>,
    /// What the connection's TLS session uses, in RabbitMQ's terms (None: no TLS).
    pub tls: Option<TlsInfo>,
}

/// A TLS session as RabbitMQ's management API describes it (`ssl_protocol`,
/// `ssl_key_exchange`, `ssl_cipher`, `ssl_hash`), e.g. "tlsv1.3", "any", "aes_256_gcm",
/// "aead".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub protocol: String,
    pub key_exchange: String,
    pub cipher: String,
    pub hash: String,
}

/// Byte and packet counts of a socket, as the kernel keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    pub recv_oct: u64,
    pub recv_cnt: u64,
    pub send_oct: u64,
    pub send_cnt: u64,
    /// Bytes written but not yet acknowledged by the peer.
    pub send_pend: u64,
}

/// What a protocol adapter can tell about one of its channels on demand (the parts of
/// its state the adapter keeps behind its own locks).
pub trait ChannelProbe: Send + Sync {
    /// Deliveries awaiting acknowledgement.
    fn unacked(&self) -> u64;
    /// `basic.qos` with global = true.
    fn global_prefetch(&self) -> u32;
}

/// One channel of a registered connection.
pub struct ChannelEntry {
    pub number: u16,
    /// Messages published on this channel (RabbitMQ's channel `publish` count).
    pub published: AtomicU64,
    /// Publishes acknowledged to a confirming publisher (RabbitMQ's `confirm`).
    pub confirmed: AtomicU64,
    /// Unroutable mandatory publishes sent back (`return_unroutable`).
    pub returned_unroutable: AtomicU64,
    /// Unroutable publishes dropped (`drop_unroutable`).
    pub dropped_unroutable: AtomicU64,
    pub confirm: AtomicBool,
    pub transactional: AtomicBool,
    /// The prefetch given to consumers created from now on (`basic.qos`, global = false).
    pub prefetch: AtomicU32,
    probe: Option<Arc<dyn ChannelProbe>>,
}

impl ChannelEntry {
    pub fn new(number: u16, probe: Option<Arc<dyn ChannelProbe>>) -> ChannelEntry {
        ChannelEntry {
            number,
            published: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            returned_unroutable: AtomicU64::new(0),
            dropped_unroutable: AtomicU64::new(0),
            confirm: AtomicBool::new(false),
            transactional: AtomicBool::new(false),
            prefetch: AtomicU32::new(0),
            probe,
        }
    }

    pub fn unacked(&self) -> u64 {
        self.probe.as_ref().map_or(0, |p| p.unacked())
    }

    pub fn global_prefetch(&self) -> u32 {
        self.probe.as_ref().map_or(0, |p| p.global_prefetch())
    }

    /// Counts one publish (the only registry call on the hot path).
    #[inline]
    pub fn count_publish(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` publishes confirmed (acked) to the publisher.
    #[inline]
    pub fn count_confirmed(&self, n: u64) {
        self.confirmed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an unroutable publish: returned if it was mandatory, else dropped.
    pub fn count_unroutable(&self, returned: bool) {
        let c = if returned {
            &self.returned_unroutable
        } else {
            &self.dropped_unroutable
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> ChannelCounts {
        ChannelCounts {
            published: self.published.load(Ordering::Relaxed),
            confirmed: self.confirmed.load(Ordering::Relaxed),
            returned_unroutable: self.returned_unroutable.load(Ordering::Relaxed),
            dropped_unroutable: self.dropped_unroutable.load(Ordering::Relaxed),
        }
    }
}

/// What channels counted (of one channel, or summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub published: u64,
    pub confirmed: u64,
    pub returned_unroutable: u64,
    pub dropped_unroutable: u64,
}

impl ChannelCounts {
    pub fn add(&mut self, o: &ChannelCounts) {
        self.published += o.published;
        self.confirmed += o.confirmed;
        self.returned_unroutable += o.returned_unroutable;
        self.dropped_unroutable += o.dropped_unroutable;
    }
}

/// A live connection.
pub struct ConnectionEntry {
    pub info: ConnectionInfo,
    /// RabbitMQ's connection name: "127.0.0.1:49458 -> 127.0.0.1:5672".
    pub name: String,
    /// When it opened, in milliseconds since the Unix epoch.
    pub connected_at: u64,
    channels: Mutex<BTreeMap<u16, Arc<ChannelEntry>>>,
    /// What channels that have since closed counted.
    closed_channels: Mutex<ChannelCounts>,
    /// The socket for `TCP_INFO`, set to None (under the write lock) before the socket
    /// closes, so a reader never queries a descriptor that was reused.
    fd: RwLock<Option<i32>>,
    /// The socket's counts when it closed.
    final_stats: Mutex<SocketStats>,
    close_reason: Mutex<Option<String>>,
    close: Notify,
    registry: Arc<RegistryInner>,
}

impl ConnectionEntry {
    pub fn id(&self) -> ConnectionId {
        self.info.id
    }

    /// Adds a channel. Returns its entry for the adapter to count on.
    pub fn add_channel(
        &self,
        number: u16,
        probe: Option<Arc<dyn ChannelProbe>>,
    ) -> Arc<ChannelEntry> {
        let ch = Arc::new(ChannelEntry::new(number, probe));
        if let Some(old) = self.channels.lock().insert(number, ch.clone()) {
            self.retire_channel(&old);
        } else {
            self.registry
                .channels_opened
                .fetch_add(1, Ordering::Relaxed);
        }
        ch
    }

    pub fn remove_channel(&self, number: u16) {
        let gone = self.channels.lock().remove(&number);
        if let Some(ch) = gone {
            self.retire_channel(&ch);
            self.registry
                .channels_closed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes every channel (the connection is closing).
    pub fn clear_channels(&self) {
        let gone = std::mem::take(&mut *self.channels.lock());
        for ch in gone.values() {
            self.retire_channel(ch);
        }
        self.registry
            .channels_closed
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
    }

    fn retire_channel(&self, ch: &ChannelEntry) {
        self.closed_channels.lock().add(&ch.counts());
    }

    pub fn channels(&self) -> Vec<Arc<ChannelEntry>> {
        self.channels.lock().values().cloned().collect()
    }

    pub fn channel(&self, number: u16) -> Option<Arc<ChannelEntry>> {
        self.channels.lock().get(&number).cloned()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.lock().len()
    }

    /// Messages published on this connection, on open and closed channels.
    pub fn published(&self) -> u64 {
        self.counts().published
    }

    /// What this connection's channels counted, open and closed.
    pub fn counts(&self) -> ChannelCounts {
        let mut all = *self.closed_channels.lock();
        for c in self.channels.lock().values() {
            all.add(&c.counts());
        }
        all
    }

    /// Asks the connection to close with `CONNECTION_FORCED` and this reason (RabbitMQ's
    /// "Closed via management plugin" by default). The adapter does the closing.
    pub fn force_close(&self, reason: &str) {
        *self.close_reason.lock() = Some(reason.to_string());
        // notify_one keeps a permit if the reader is not waiting right now.
        self.close.notify_one();
    }

    /// Resolves once [`Self::force_close`] was called; returns the reason.
    pub async fn close_requested(&self) -> String {
        loop {
            if let Some(r) = self.close_reason.lock().clone() {
                return r;
            }
            self.close.notified().await;
        }
    }

    /// The reason, if a close was requested.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.lock().clone()
    }

    /// Byte and packet counts from the kernel (the last ones read once the socket is
    /// gone; zeros where `TCP_INFO` is not available).
    pub fn socket_stats(&self) -> SocketStats {
        match *self.fd.read() {
            Some(fd) => tcp_info(fd).unwrap_or_default(),
            None => *self.final_stats.lock(),
        }
    }
}

/// Queue churn: RabbitMQ's `queue_declared`, `queue_created`, `queue_deleted`.
#[derive(Debug, Default)]
pub struct QueueChurn {
    declared: AtomicU64,
    created: AtomicU64,
    deleted: AtomicU64,
}

impl QueueChurn {
    /// A `queue.declare` that is not passive (as RabbitMQ counts: whether it creates the
    /// queue, finds it, or fails an equivalence check).
    pub fn declared(&self) {
        self.declared.fetch_add(1, Ordering::Relaxed);
    }

    pub fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    /// A queue went, however (deleted, expired, auto-deleted, its owner gone).
    pub fn deleted(&self) {
        self.deleted.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every live connection, plus churn counters and the totals of connections that ended.
#[derive(Default)]
struct RegistryInner {
    connections: RwLock<HashMap<ConnectionId, Arc<ConnectionEntry>>>,
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    channels_opened: AtomicU64,
    channels_closed: AtomicU64,
    /// Per vhost: what closed connections published and transferred (so vhost and
    /// overview totals never go backwards when a connection ends).
    retired: Mutex<HashMap<String, Retired>>,
}

/// Every live connection, plus churn counters and the totals of connections that ended.
#[derive(Default)]
pub struct Registry {
    inner: Arc<RegistryInner>,
    queues: Arc<QueueChurn>,
}

/// Counters of connections that have ended, per vhost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retired {
    /// What their channels counted.
    pub channels: ChannelCounts,
    pub recv_oct: u64,
    pub send_oct: u64,
}

/// Churn counters, RabbitMQ's `churn_rates` and `*_opened_total` metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Churn {
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels_opened: u64,
    pub channels_closed: u64,
    pub queues_declared: u64,
    pub queues_created: u64,
    pub queues_deleted: u64,
}

/// The registration of a connection; deregisters it when dropped.
pub struct Registration {
    pub entry: Arc<ConnectionEntry>,
}

impl Registration {
    /// Forgets the socket before it closes (see [`ConnectionEntry::socket_stats`]), after
    /// taking its final byte counts. Called by the adapter right before it drops the
    /// socket; dropping the registration does it too.
    pub fn socket_closing(&self) {
        let mut fd = self.entry.fd.write();
        if let Some(f) = *fd {
            *self.entry.final_stats.lock() = tcp_info(f).unwrap_or_default();
        }
        *fd = None;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.socket_closing();
        self.entry.registry.deregister(&self.entry);
    }
}

impl RegistryInner {
    fn deregister(&self, entry: &Arc<ConnectionEntry>) {
        let sock = *entry.final_stats.lock();
        entry.clear_channels();
        if self.connections.write().remove(&entry.info.id).is_none() {
            return;
        }
        self.connections_closed.fetch_add(1, Ordering::Relaxed);
        let mut retired = self.retired.lock();
        let r = retired.entry(entry.info.vhost.clone()).or_default();
        r.channels.add(&entry.counts());
        r.recv_oct += sock.recv_oct;
        r.send_oct += sock.send_oct;
    }
}

impl Registry {
    /// A registry that counts queue churn in `queues` (shared with the vhosts).
    pub fn new(queues: Arc<QueueChurn>) -> Registry {
        Registry {
            inner: Default::default(),
            queues,
        }
    }

    /// Registers a connection. Keep the returned [`Registration`] for as long as the
    /// connection lives; dropping it deregisters.
    pub fn register(&self, info: ConnectionInfo) -> Registration {
        let name = format!("{} -> {}", info.peer, info.local);
        let entry = Arc::new(ConnectionEntry {
            name,
            connected_at: now_ms(),
            channels: Mutex::new(BTreeMap::new()),
            closed_channels: Mutex::new(ChannelCounts::default()),
            fd: RwLock::new(info.fd),
            final_stats: Mutex::new(SocketStats::default()),
            close_reason: Mutex::new(None),
            close: Notify::new(),
            registry: self.inner.clone(),
            info,
        });
        self.inner
            .connections
            .write()
            .insert(entry.info.id, entry.clone());
        self.inner
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Registration { entry }
    }

    pub fn connections(&self) -> Vec<Arc<ConnectionEntry>> {
        self.inner.connections.read().values().cloned().collect()
    }

    pub fn connection(&self, id: ConnectionId) -> Option<Arc<ConnectionEntry>> {
        self.inner.connections.read().get(&id).cloned()
    }

    /// Looks a connection up by its RabbitMQ name.
    pub fn connection_by_name(&self, name: &str) -> Option<Arc<ConnectionEntry>> {
        self.inner
            .connections
            .read()
            .values()
            .find(|c| c.name == name)
            .cloned()
    }

    /// A channel's entry (looked up, so not for every publish).
    pub fn channel_entry(&self, id: ConnectionId, number: u16) -> Option<Arc<ChannelEntry>> {
        self.connection(id)?.channel(number)
    }

    /// Counts an unroutable publish on a channel: returned if it was mandatory, else
    /// dropped. A lookup per unroutable message: they are the exception.
    pub fn count_unroutable(&self, id: ConnectionId, number: u16, mandatory: bool) {
        if let Some(ch) = self.channel_entry(id, number) {
            ch.count_unroutable(mandatory);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.inner.connections.read().len()
    }

    pub fn queue_declared(&self) {
        self.queues.declared();
    }

    pub fn queue_created(&self) {
        self.queues.created();
    }

    pub fn queue_deleted(&self) {
        self.queues.deleted();
    }

    pub fn churn(&self) -> Churn {
        let i = &self.inner;
        let q = &self.queues;
        Churn {
            connections_opened: i.connections_opened.load(Ordering::Relaxed),
            connections_closed: i.connections_closed.load(Ordering::Relaxed),
            channels_opened: i.channels_opened.load(Ordering::Relaxed),
            channels_closed: i.channels_closed.load(Ordering::Relaxed),
            queues_declared: q.declared.load(Ordering::Relaxed),
            queues_created: q.created.load(Ordering::Relaxed),
            queues_deleted: q.deleted.load(Ordering::Relaxed),
        }
    }

    /// What connections that have ended had counted, per vhost.
    pub fn retired(&self) -> HashMap<String, Retired> {
        self.inner.retired.lock().clone()
    }

    /// Forgets a deleted vhost's retired counters.
    pub fn forget_vhost(&self, vhost: &str) {
        self.inner.retired.lock().remove(vhost);
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The head of Linux's `struct tcp_info` up to `tcpi_bytes_received` (kernel 4.1+); the
/// kernel copies as much as the caller asks for and reports the length it filled.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    delivery_rate_app_limited: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
    delivery_rate: u64,
    busy_time: u64,
    rwnd_limited: u64,
    sndbuf_limited: u64,
    delivered: u32,
    delivered_ce: u32,
    bytes_sent: u64,
    bytes_retrans: u64,
}

#[cfg(target_os = "linux")]
fn tcp_info(fd: i32) -> Option<SocketStats> {
    let mut info = TcpInfo::default();
    let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: `info` is a plain repr(C) struct of `len` bytes; the kernel writes at most
    // `len` bytes into it and stores the length it wrote in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut TcpInfo as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    let filled = len as usize;
    let has = |end: usize| filled >= end;
    let off_received = std::mem::offset_of!(TcpInfo, bytes_received) + 8;
    let off_segs_in = std::mem::offset_of!(TcpInfo, segs_in) + 4;
    let off_data_out = std::mem::offset_of!(TcpInfo, data_segs_out) + 4;
    let off_sent = std::mem::offset_of!(TcpInfo, bytes_sent) + 8;
    if !has(off_received) {
        return None;
    }
    // bytes_sent (4.19+) counts what was handed to the network, retransmits included;
    // bytes_acked is what the peer confirmed: the closest to RabbitMQ's send_oct (what
    // the broker wrote) is acked + not yet acked-but-sent.
    let send_oct = if has(off_sent) {
        info.bytes_sent.saturating_sub(info.bytes_retrans)
    } else {
        info.bytes_acked
    };
    Some(SocketStats {
        recv_oct: info.bytes_received,
        recv_cnt: if has(off_data_out) {
            info.data_segs_in as u64
        } else if has(off_segs_in) {
            info.segs_in as u64
        } else {
            0
        },
        send_oct,
        send_cnt: if has(off_data_out) {
            info.data_segs_out as u64
        } else {
            0
        },
        send_pend: info.notsent_bytes as u64,
    })
}

#[cfg(not(target_os = "linux"))]
fn tcp_info(_fd: i32) -> Option<SocketStats> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64) -> ConnectionInfo {
        ConnectionInfo {
            id,
            protocol: "AMQP 0-9-1".into(),
            peer: "127.0.0.1:4000".parse().unwrap(),
            local: "127.0.0.1:5672".parse().unwrap(),
            user: "guest".into(),
            vhost: "/".into(),
            auth_mechanism: "PLAIN".into(),
            client_properties: serde_json::json!({}),
            frame_max: 131072,
            channel_max: 2047,
            heartbeat: 60,
            fd: None,
            tls: None,
        }
    }

    #[test]
    fn register_count_and_retire() {
        let r = Registry::default();
        let reg = r.register(info(1));
        assert_eq!(reg.entry.name, "127.0.0.1:4000 -> 127.0.0.1:5672");
        let ch = reg.entry.add_channel(1, None);
        ch.count_publish();
        ch.count_publish();
        ch.count_confirmed(2);
        ch.count_unroutable(true);
        reg.entry.remove_channel(1);
        let ch2 = reg.entry.add_channel(2, None);
        ch2.count_publish();
        assert_eq!(reg.entry.published(), 3);
        assert_eq!(reg.entry.counts().confirmed, 2);
        assert_eq!(reg.entry.counts().returned_unroutable, 1);
        assert_eq!(r.connection_count(), 1);
        assert!(r
            .connection_by_name("127.0.0.1:4000 -> 127.0.0.1:5672")
            .is_some());
        drop(reg);
        assert_eq!(r.connection_count(), 0);
        assert_eq!(r.retired()["/"].channels.published, 3);
        let c = r.churn();
        assert_eq!(
            (
                c.connections_opened,
                c.connections_closed,
                c.channels_opened,
                c.channels_closed
            ),
            (1, 1, 2, 2)
        );
    }

    #[tokio::test]
    async fn force_close_wakes_a_later_waiter() {
        let r = Registry::default();
        let reg = r.register(info(2));
        reg.entry.force_close("Closed via management plugin");
        let why = reg.entry.close_requested().await;
        assert_eq!(why, "Closed via management plugin");
    }
}
