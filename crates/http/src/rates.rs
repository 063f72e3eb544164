//! Figures and their rates.
//!
//! Counters live in the core (queue counters, channel publish counts, the kernel's
//! socket counts); RabbitMQ's API shows each with a `*_details.rate` (per second over the
//! last sampling interval). A sampler task reads every figure each interval and keeps,
//! per object, the previous reading and the rate it gives. Rendering reads the current
//! figures directly and only the rates from here.
//!
//! Queues are tracked by address with a `Weak` handle (so a deleted queue's address is
//! never mistaken for a new queue's); objects not seen in a round are forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::watch;
use warren_core::queue::QueueStats;
use warren_core::registry::ChannelCounts;
use warren_core::{Broker, ConnectionId, Queue};

use crate::State;

pub const PUBLISH: usize = 0;
pub const DELIVER: usize = 1;
pub const DELIVER_NO_ACK: usize = 2;
pub const GET: usize = 3;
pub const GET_NO_ACK: usize = 4;
pub const ACK: usize = 5;
pub const REDELIVER: usize = 6;
pub const GET_EMPTY: usize = 7;
pub const MESSAGES: usize = 8;
pub const READY: usize = 9;
pub const UNACKED: usize = 10;
/// Figures per queue.
pub const QN: usize = 11;
pub const RECV_OCT: usize = 11;
pub const SEND_OCT: usize = 12;
/// Counted by channels: confirmed, returned and dropped publishes.
pub const CONFIRM: usize = 13;
pub const RETURN_UNROUTABLE: usize = 14;
pub const DROP_UNROUTABLE: usize = 15;
/// Figures per vhost and for the whole broker.
pub const VN: usize = 16;

/// Figures per channel: publish, confirm, return_unroutable, drop_unroutable.
pub const CN: usize = 4;

/// Which figures are gauges (their rate may be negative); the rest are counters.
fn is_gauge(i: usize) -> bool {
    matches!(i, MESSAGES | READY | UNACKED)
}

/// A queue's figures: its counters, then its depth.
pub fn queue_figures(q: &Queue, s: &QueueStats) -> [u64; QN] {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &q.counters;
    [
        c.published.load(Relaxed),
        c.delivered.load(Relaxed),
        c.delivered_no_ack.load(Relaxed),
        c.get.load(Relaxed),
        c.get_no_ack.load(Relaxed),
        c.acked.load(Relaxed),
        c.redelivered.load(Relaxed),
        c.get_empty.load(Relaxed),
        s.ready + s.unacked,
        s.ready,
        s.unacked,
    ]
}

/// Totals of a vhost (or of the broker).
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Indexed by the constants above; `PUBLISH` counts channel publishes (what clients
    /// sent), not enqueues; `CONFIRM` and the unroutable counts are channels' too.
    pub v: [u64; VN],
    pub queues: u64,
    pub consumers: u64,
    pub exchanges: u64,
    pub connections: u64,
    pub channels: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        for i in 0..VN {
            self.v[i] += o.v[i];
        }
        self.queues += o.queues;
        self.consumers += o.consumers;
        self.exchanges += o.exchanges;
        self.connections += o.connections;
        self.channels += o.channels;
    }
}

/// Scans the broker into per-vhost totals (every queue's figures, every connection's
/// counts, and what ended connections had counted). `each_queue` sees every queue with
/// its stats on the way.
pub fn vhost_totals(
    broker: &Broker,
    mut each_queue: impl FnMut(&Arc<Queue>, &QueueStats, &[u64; QN]),
) -> HashMap<String, Totals> {
    let mut out: HashMap<String, Totals> = HashMap::new();
    for vd in broker.list_vhost_defs() {
        let Some(v) = broker.vhost(&vd.name) else {
            continue;
        };
        let t = out.entry(vd.name.clone()).or_default();
        for q in v.queues() {
            let s = q.stats();
            let f = queue_figures(&q, &s);
            // A queue's own publish count is enqueues; the vhost's comes from channels.
            for (total, x) in t.v[DELIVER..QN].iter_mut().zip(&f[DELIVER..QN]) {
                *total += x;
            }
            t.queues += 1;
            t.consumers += s.consumers;
            each_queue(&q, &s, &f);
        }
        t.exchanges += v.exchanges().len() as u64;
    }
    let reg = broker.registry();
    for c in reg.connections() {
        let Some(t) = out.get_mut(&c.info.vhost) else {
            continue;
        };
        let sock = c.socket_stats();
        add_channel_counts(t, &c.counts());
        t.v[RECV_OCT] += sock.recv_oct;
        t.v[SEND_OCT] += sock.send_oct;
        t.connections += 1;
        t.channels += c.channel_count() as u64;
    }
    for (vhost, r) in reg.retired() {
        if let Some(t) = out.get_mut(&vhost) {
            add_channel_counts(t, &r.channels);
            t.v[RECV_OCT] += r.recv_oct;
            t.v[SEND_OCT] += r.send_oct;
        }
    }
    out
}

fn add_channel_counts(t: &mut Totals, c: &ChannelCounts) {
    t.v[PUBLISH] += c.published;
    t.v[CONFIRM] += c.confirmed;
    t.v[RETURN_UNROUTABLE] += c.returned_unroutable;
    t.v[DROP_UNROUTABLE] += c.dropped_unroutable;
}

/// A channel's figures, indexed as [`CN`] says.
pub fn channel_figures(c: &ChannelCounts) -> [u64; CN] {
    [
        c.published,
        c.confirmed,
        c.returned_unroutable,
        c.dropped_unroutable,
    ]
}

pub fn sum(totals: &HashMap<String, Totals>) -> Totals {
    let mut all = Totals::default();
    for t in totals.values() {
        all.add(t);
    }
    all
}

/// The last reading of N figures and the rates it gave.
#[derive(Debug, Clone, Copy)]
pub struct Track<const N: usize> {
    at: Instant,
    prev: [u64; N],
    pub rate: [f64; N],
    round: u64,
}

impl<const N: usize> Track<N> {
    fn new(now: Instant, cur: [u64; N], round: u64) -> Track<N> {
        Track {
            at: now,
            prev: cur,
            rate: [0.0; N],
            round,
        }
    }

    fn update(&mut self, now: Instant, cur: [u64; N], round: u64, gauge: impl Fn(usize) -> bool) {
        let dt = now.duration_since(self.at).as_secs_f64();
        if dt > 0.0 {
            for (i, (rate, (c, p))) in self
                .rate
                .iter_mut()
                .zip(cur.iter().zip(&self.prev))
                .enumerate()
            {
                let r = (*c as f64 - *p as f64) / dt;
                // Counters only go down when their objects go (a deleted queue's
                // counts leave its vhost's total): that is no negative rate.
                let r = if gauge(i) { r } else { r.max(0.0) };
                // One decimal, as RabbitMQ shows rates.
                *rate = (r * 10.0).round() / 10.0;
            }
        }
        self.at = now;
        self.prev = cur;
        self.round = round;
    }
}

/// The rates of everything the API shows rates for.
#[derive(Default)]
pub struct Rates {
    queues: Mutex<HashMap<usize, (Weak<Queue>, Track<QN>)>>,
    vhosts: Mutex<HashMap<String, Track<VN>>>,
    global: Mutex<Option<Track<VN>>>,
    /// recv_oct, send_oct
    connections: Mutex<HashMap<ConnectionId, Track<2>>>,
    /// [`channel_figures`]
    channels: Mutex<HashMap<(ConnectionId, u16), Track<CN>>>,
    round: Mutex<u64>,
}

impl Rates {
    pub fn queue(&self, q: &Arc<Queue>) -> [f64; QN] {
        let key = Arc::as_ptr(q) as usize;
        self.queues
            .lock()
            .get(&key)
            .filter(|(w, _)| w.as_ptr() == Arc::as_ptr(q))
            .map_or([0.0; QN], |(_, t)| t.rate)
    }

    pub fn vhost(&self, name: &str) -> [f64; VN] {
        self.vhosts.lock().get(name).map_or([0.0; VN], |t| t.rate)
    }

    pub fn global(&self) -> [f64; VN] {
        self.global.lock().map_or([0.0; VN], |t| t.rate)
    }

    pub fn connection(&self, id: ConnectionId) -> [f64; 2] {
        self.connections
            .lock()
            .get(&id)
            .map_or([0.0; 2], |t| t.rate)
    }

    pub fn channel(&self, id: ConnectionId, number: u16) -> [f64; CN] {
        self.channels
            .lock()
            .get(&(id, number))
            .map_or([0.0; CN], |t| t.rate)
    }

    /// Takes one reading of everything.
    pub fn sample(&self, broker: &Broker) {
        let now = Instant::now();
        let round = {
            let mut r = self.round.lock();
            *r += 1;
            *r
        };
        let mut seen: Vec<(usize, Weak<Queue>, [u64; QN])> = Vec::new();
        let totals = vhost_totals(broker, |q, _, f| {
            seen.push((Arc::as_ptr(q) as usize, Arc::downgrade(q), *f))
        });
        {
            let mut qs = self.queues.lock();
            for (key, weak, f) in seen {
                match qs.get_mut(&key) {
                    Some((w, t)) if w.ptr_eq(&weak) => t.update(now, f, round, is_gauge),
                    _ => {
                        qs.insert(key, (weak, Track::new(now, f, round)));
                    }
                }
            }
            qs.retain(|_, (_, t)| t.round == round);
        }
        {
            let mut vs = self.vhosts.lock();
            for (name, t) in &totals {
                match vs.get_mut(name) {
                    Some(tr) => tr.update(now, t.v, round, is_gauge),
                    None => {
                        vs.insert(name.clone(), Track::new(now, t.v, round));
                    }
                }
            }
            vs.retain(|_, t| t.round == round);
        }
        {
            let all = sum(&totals);
            let mut g = self.global.lock();
            match g.as_mut() {
                Some(t) => t.update(now, all.v, round, is_gauge),
                None => *g = Some(Track::new(now, all.v, round)),
            }
        }
        let mut conns = self.connections.lock();
        let mut chans = self.channels.lock();
        for c in broker.registry().connections() {
            let s = c.socket_stats();
            let cur = [s.recv_oct, s.send_oct];
            match conns.get_mut(&c.id()) {
                Some(t) => t.update(now, cur, round, |_| false),
                None => {
                    conns.insert(c.id(), Track::new(now, cur, round));
                }
            }
            for ch in c.channels() {
                let cur = channel_figures(&ch.counts());
                match chans.get_mut(&(c.id(), ch.number)) {
                    Some(t) => t.update(now, cur, round, |_| false),
                    None => {
                        chans.insert((c.id(), ch.number), Track::new(now, cur, round));
                    }
                }
            }
        }
        conns.retain(|_, t| t.round == round);
        chans.retain(|_, t| t.round == round);
    }
}

/// The sampler task: one reading per interval until shutdown.
pub async fn run(state: State, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.cfg.stats_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let s = state.clone();
                // Scanning every queue takes their locks: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || s.rates.sample(&s.broker)).await;
            }
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
        }
    }
}
