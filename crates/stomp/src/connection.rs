//! One STOMP connection: the reader loop, frames to their handlers, heart-beats, errors
//! and the end of the connection.
//!
//! Errors are RabbitMQ's: a mistake in a frame (a missing header, an unknown
//! destination...) gets an ERROR frame and the connection carries on; an error the
//! broker raises (what would close an AMQP channel: a missing queue, an unknown delivery
//! tag) gets an ERROR frame named after the AMQP error (`not_found`,
//! `precondition_failed`...) and closes the connection; a frame that cannot be parsed
//! closes it at once (RabbitMQ 3.10 logs it and says nothing).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;
use tokio::time::Instant;
use warren_core::access::Access;
use warren_core::registry::{ChannelEntry, ConnectionEntry, Registration};
use warren_core::{BrokerError, ConnectionId, Queue, VHost};
use warren_stomp_codec::{Command, Decoded, Decoder, Frame, Version};
use warren_websocket::{Outbound, Reader, SocketMeta, WakeBatch, Writer};

use crate::delivery::{error_frame, Sink};
use crate::listener::Shared;
use crate::send::Receipts;
use crate::transaction::TxAction;

/// How a frame handler failed.
pub(crate) enum Fail {
    /// ERROR frame; the connection goes on (RabbitMQ's `error/3`).
    Error { message: String, detail: String },
    /// ERROR frame, then close (RabbitMQ's `amqp_death`).
    Fatal { message: String, detail: String },
    /// Close without a word (DISCONNECT).
    Stop,
}

impl Fail {
    pub fn error(message: &str, detail: impl Into<String>) -> Fail {
        Fail::Error {
            message: message.into(),
            detail: detail.into(),
        }
    }

    /// An error the broker core raised, named as RabbitMQ names the AMQP error.
    pub fn broker(e: BrokerError) -> Fail {
        Fail::Fatal {
            message: error_atom(e.code).into(),
            detail: e.reply_text(),
        }
    }
}

/// RabbitMQ's `amqp_connection:error_atom/1`.
fn error_atom(code: u16) -> &'static str {
    match code {
        311 => "content_too_large",
        312 => "no_route",
        313 => "no_consumers",
        320 => "connection_forced",
        402 => "invalid_path",
        403 => "access_refused",
        404 => "not_found",
        405 => "resource_locked",
        406 => "precondition_failed",
        501 => "frame_error",
        502 => "syntax_error",
        503 => "command_invalid",
        504 => "channel_error",
        505 => "unexpected_frame",
        506 => "resource_error",
        530 => "not_allowed",
        540 => "not_implemented",
        _ => "internal_error",
    }
}

/// A string as Erlang's `~p` prints it (RabbitMQ's error texts use it).
pub(crate) fn erl(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The body of RabbitMQ 3.10's ERROR when the management API closes a STOMP connection:
/// `Reason: ~p` of the AMQP channel's exit reason, as Erlang's pretty printer lays it
/// out (a tuple that does not fit the 80-column line within 78 characters is broken
/// after its first element, the rest indented four more than its brace).
fn forced_close_reason(why: &str) -> String {
    const FITS: usize = 78;
    let s = erl(why);
    let flat =
        format!("Reason: {{shutdown,{{connection_closing,{{server_initiated_close,320,{s}}}}}}}");
    if flat.len() <= FITS {
        return flat;
    }
    let head = "Reason: {shutdown,\n";
    let l1 = format!(
        "{:12}{{connection_closing,{{server_initiated_close,320,{s}}}}}}}",
        ""
    );
    if l1.len() <= FITS {
        return format!("{head}{l1}");
    }
    let l2 = format!("{:16}{{server_initiated_close,320,{s}}}}}}}", "");
    if l2.len() <= FITS {
        return format!("{head}{:12}{{connection_closing,\n{l2}", "");
    }
    format!(
        "{head}{:12}{{connection_closing,\n{:16}{{server_initiated_close,320,\n{:20}{s}}}}}}}",
        "", "", ""
    )
}

/// A subscription.
pub(crate) struct Sub {
    pub dest_hdr: String,
    pub queue: Arc<Queue>,
    /// `client` (acks are `multiple`) rather than `client-individual`.
    pub multi_ack: bool,
}

/// One connection's state after CONNECT.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub out: Arc<Outbound>,
    pub id: ConnectionId,
    pub version: Version,
    pub vhost: Arc<VHost>,
    pub user: String,
    /// The user's permissions in the vhost, compiled at CONNECT.
    pub access: Arc<Access>,
    /// This connection in the management registry (taken by `serve_connection` at the
    /// end, to deregister once the socket is done).
    pub registration: Option<Registration>,
    pub entry: Arc<ConnectionEntry>,
    /// The registry's channel of this connection (RabbitMQ shows one per STOMP
    /// connection): publishes are counted on it.
    pub channel: Arc<ChannelEntry>,
    pub sink: Arc<Sink>,
    pub subs: HashMap<String, Sub>,
    /// Credit for new subscriptions (the last `prefetch-count`; 0: unlimited).
    pub prefetch: u32,
    pub transactions: HashMap<String, Vec<TxAction>>,
    /// `/temp-queue/<id>` -> its queue.
    pub reply_queues: HashMap<String, String>,
    /// Queues declared by this connection's SENDs already (RabbitMQ's route state).
    pub declared: HashSet<String>,
    pub receipts: Receipts,
    /// RECEIPTs of the frames a COMMIT just performed (sent after COMMIT's own).
    pub tx_receipts: Vec<String>,
    pub route_buf: Vec<Arc<Queue>>,
    /// Heart-beats from the client are due this often (we allow twice as long).
    pub receive_every: Option<Duration>,
    /// We send a heart-beat after this long without writing.
    pub send_every: Option<Duration>,
}

pub(crate) async fn serve_connection(
    mut r: Reader,
    w: Writer,
    meta: SocketMeta,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    websocket: bool,
) {
    let peer = meta.peer;
    let out = Arc::new(Outbound::new(websocket));
    let (send_every_tx, send_every_rx) = tokio::sync::oneshot::channel::<Option<Duration>>();
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            // The writer starts once the heart-beat interval is known (CONNECTED).
            let every = send_every_rx.await.ok().flatten();
            out.run_writer(w, every.map(|d| (d, &b"\n"[..]))).await
        })
    };
    let mut send_every_tx = Some(send_every_tx);
    let mut decoder = Decoder::new(Version::V1_0, shared.cfg.limits);
    let mut buf = BytesMut::new();
    let login_deadline = Instant::now() + shared.cfg.login_timeout;
    // Before CONNECT: frames until one logs in.
    let conn = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Decoded::Heartbeat)) => continue,
            Ok(Some(Decoded::Frame(f))) => {
                if matches!(f.command, Command::Connect | Command::Stomp) {
                    match crate::connect::connect(&shared, f, meta.clone(), out.clone(), websocket)
                    {
                        Ok(c) => break Some(c),
                        Err(()) => {
                            flush_start(&out, &mut send_every_tx);
                            continue;
                        }
                    }
                }
                write_frame(
                    &out,
                    Version::V1_0,
                    &error_frame(
                        "Illegal command",
                        "You must log in using CONNECT first",
                        &[],
                    ),
                );
                flush_start(&out, &mut send_every_tx);
                continue;
            }
            Ok(None) => {}
            Err(e) if !e.is_fatal() => {
                let cmd = match &e {
                    warren_stomp_codec::Error::UnknownCommand(c) => {
                        String::from_utf8_lossy(c).into_owned()
                    }
                    _ => String::new(),
                };
                write_frame(
                    &out,
                    Version::V1_0,
                    &error_frame(
                        "Bad command",
                        format!("Could not interpret command {}\n", erl(&cmd)).as_str(),
                        &[],
                    ),
                );
                flush_start(&out, &mut send_every_tx);
                continue;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "STOMP frame cannot be parsed; closing");
                break None;
            }
        }
        tokio::select! {
            res = r.read_buf(&mut buf) => match res {
                Ok(0) | Err(_) => break None,
                Ok(_) => {}
            },
            _ = tokio::time::sleep_until(login_deadline) => {
                tracing::info!(%peer, "STOMP connection closed: no CONNECT in time");
                break None;
            }
            _ = shutdown.changed() => break None,
        }
    };
    let mut registration = None;
    if let Some(mut conn) = conn {
        decoder.set_version(conn.version);
        let send_every = conn.send_every();
        if let Some(tx) = send_every_tx.take() {
            let _ = tx.send(send_every);
        }
        let reason = conn.run(&mut r, buf, decoder, &mut shutdown).await;
        conn.finish(reason);
        registration = conn.registration.take();
    }
    flush_start(&out, &mut send_every_tx);
    out.close();
    let _ = writer.await;
    // Deregistered while `r` still holds the socket open (`Registration::socket_closing`).
    drop(registration);
}

/// Starts the writer (without heart-beats) if it is not running yet.
fn flush_start(out: &Outbound, tx: &mut Option<tokio::sync::oneshot::Sender<Option<Duration>>>) {
    if let Some(tx) = tx.take() {
        let _ = tx.send(None);
    }
    out.schedule();
}

pub(crate) fn write_frame(out: &Outbound, version: Version, f: &Frame) {
    out.write_deferred(|b| {
        if let Err(e) = warren_stomp_codec::encode(f, version, b) {
            tracing::error!(error = %e, "cannot encode a STOMP frame");
        }
    });
}

impl Conn {
    pub fn send_frame(&self, f: &Frame) {
        write_frame(&self.out, self.version, f);
    }

    fn send_every(&self) -> Option<Duration> {
        self.send_every
    }

    async fn run(
        &mut self,
        r: &mut Reader,
        mut buf: BytesMut,
        mut decoder: Decoder,
        shutdown: &mut watch::Receiver<bool>,
    ) -> &'static str {
        let committer = self.shared.broker.storage.committer.clone();
        let mut synced = committer.subscribe();
        let mut alarms = self.shared.broker.alarms.subscribe();
        let limit = self.receive_every.map(|d| d * 2);
        let mut deadline = limit.map(|d| Instant::now() + d);
        let entry = self.entry.clone();
        loop {
            let end = {
                let _wakes = WakeBatch::begin();
                self.process_buffered(&mut buf, &mut decoder)
            };
            self.receipts
                .flush(&self.out, self.version, committer.done());
            self.out.schedule();
            if let Some(why) = end {
                return why;
            }
            self.handle_cancelled();
            if buf.is_empty() && buf.capacity() > 0 {
                buf = BytesMut::new();
            }
            let blocked = *alarms.borrow_and_update();
            tokio::select! {
                res = r.read_buf(&mut buf), if !blocked => match res {
                    Ok(0) | Err(_) => return "client closed the socket",
                    Ok(_) => {
                        if let Some(d) = limit {
                            deadline = Some(Instant::now() + d);
                        }
                    }
                },
                _ = alarms.changed() => {
                    if let Some(d) = limit {
                        deadline = Some(Instant::now() + d);
                    }
                }
                _ = synced.changed(), if self.receipts.waiting() => {}
                _ = self.sink.wake.notified() => {}
                _ = shutdown.changed() => {
                    self.send_frame(&error_frame("connection_forced", "broker forced connection closure with reason 'shutdown'", &[]));
                    return "broker shutdown";
                }
                why = entry.close_requested() => {
                    // DELETE /api/connections/{name}: RabbitMQ 3.10's STOMP plugin sees
                    // its AMQP channel die with the forced close, and says so.
                    tracing::info!(connection = self.id, reason = %why, "closing STOMP connection on request");
                    self.send_frame(&error_frame("AMQP channel died", &forced_close_reason(&why), &[]));
                    return "closed on request";
                }
                _ = sleep_until_opt(deadline), if !blocked => {
                    tracing::warn!(connection = self.id, "STOMP detected missed client heartbeat(s)");
                    return "heart-beat timeout";
                }
            }
        }
    }

    /// Handles every complete frame in `buf`. `Some(reason)`: the connection ends.
    fn process_buffered(
        &mut self,
        buf: &mut BytesMut,
        decoder: &mut Decoder,
    ) -> Option<&'static str> {
        loop {
            let mut frame = match decoder.decode(buf) {
                Ok(Some(Decoded::Frame(f))) => f,
                Ok(Some(Decoded::Heartbeat)) => continue,
                Ok(None) => return None,
                Err(warren_stomp_codec::Error::UnknownCommand(c)) => {
                    let cmd = String::from_utf8_lossy(&c).into_owned();
                    self.fail(Fail::error(
                        "Bad command",
                        format!("Could not interpret command {}\n", erl(&cmd)),
                    ));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(connection = self.id, error = %e, "STOMP frame cannot be parsed; closing");
                    return Some("unparseable frame");
                }
            };
            if self.version == Version::V1_0 {
                frame.trim_value_leading_spaces();
            }
            let receipt = frame.header_str("receipt").map(str::to_string);
            // A SEND, ACK or NACK in a transaction gets its RECEIPT at COMMIT.
            let buffered = matches!(frame.command, Command::Send | Command::Ack | Command::Nack)
                && frame.header("transaction").is_some();
            let r = self.handle(frame);
            match r {
                Ok(deferred) => {
                    if let Some(id) = receipt.filter(|_| !buffered) {
                        self.receipts.push(id, deferred);
                    }
                    for id in std::mem::take(&mut self.tx_receipts) {
                        self.receipts.push(id, deferred);
                    }
                }
                Err(Fail::Stop) => {
                    if let Some(id) = receipt {
                        self.receipts.push(id, None);
                    }
                    return Some("client disconnected");
                }
                Err(f) => {
                    self.tx_receipts.clear();
                    if self.fail(f) {
                        return Some("broker error");
                    }
                }
            }
        }
    }

    /// Sends the ERROR frame of a failure. Returns whether the connection must close.
    fn fail(&mut self, f: Fail) -> bool {
        match f {
            Fail::Error { message, detail } => {
                tracing::warn!(
                    connection = self.id,
                    message,
                    detail,
                    "STOMP error frame sent"
                );
                self.send_frame(&error_frame(&message, &detail, &[]));
                false
            }
            Fail::Fatal { message, detail } => {
                tracing::warn!(
                    connection = self.id,
                    message,
                    detail,
                    "STOMP error frame sent; closing"
                );
                self.send_frame(&error_frame(&message, &detail, &[]));
                true
            }
            Fail::Stop => true,
        }
    }

    /// One frame. `Ok(Some(epoch))`: its receipt waits for that commit epoch.
    fn handle(&mut self, f: Frame) -> Result<Option<u64>, Fail> {
        match f.command {
            Command::Send => self.send(f),
            Command::Subscribe => self.subscribe(f).map(|_| None),
            Command::Unsubscribe => self.unsubscribe(f).map(|_| None),
            Command::Ack => self.ack(f, true).map(|_| None),
            Command::Nack => self.ack(f, false).map(|_| None),
            Command::Begin => self.begin(f).map(|_| None),
            Command::Commit => self.commit(f),
            Command::Abort => self.abort(f).map(|_| None),
            Command::Disconnect => Err(Fail::Stop),
            Command::Connect | Command::Stomp => Err(Fail::error(
                "Bad command",
                format!("Could not interpret command {}\n", erl(f.command.as_str())),
            )),
            other => Err(Fail::error(
                "Bad command",
                format!("Could not interpret command {}\n", erl(other.as_str())),
            )),
        }
    }

    /// Subscriptions whose queue was deleted: RabbitMQ's "Server cancelled
    /// subscription" ERROR, and the connection goes on.
    fn handle_cancelled(&mut self) {
        let cancelled = std::mem::take(&mut self.sink.state.lock().cancelled);
        for ctag in cancelled {
            let Some(sub) = self.subs.remove(&ctag) else {
                continue;
            };
            self.out.remove_consumed_queue(&sub.queue);
            let id = ctag
                .strip_prefix("T_")
                .map(str::to_string)
                .unwrap_or_else(|| format!("Unknown[{ctag}]"));
            self.send_frame(&error_frame(
                "Server cancelled subscription",
                &format!("The server has canceled a subscription.\nNo more messages will be delivered for {}.\n", erl(&format!("destination='{}'", sub.dest_hdr))),
                &[("subscription", id)],
            ));
        }
    }

    /// Releases everything: consumers cancelled, unacked messages requeued, exclusive
    /// queues (temp queues, non-durable topic subscriptions) deleted.
    fn finish(&mut self, reason: &'static str) {
        tracing::info!(connection = self.id, peer = %self.peer, reason, "STOMP connection closed");
        let unacked: Vec<_> = {
            let mut st = self.sink.state.lock();
            st.closed = true;
            st.unacked.drain(..).collect()
        };
        for (ctag, sub) in self.subs.drain() {
            self.vhost.cancel(&sub.queue, self.id, &ctag);
        }
        for u in unacked {
            u.queue.requeue([u.env]);
        }
        self.vhost.connection_closed(self.id);
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::forced_close_reason;

    #[test]
    fn forced_close_reason_is_laid_out_as_erlang_prints_it() {
        // As `rabbit_misc:format("Reason: ~p", [...])` prints them on RabbitMQ 3.10.
        assert_eq!(
            forced_close_reason("go away"),
            "Reason: {shutdown,{connection_closing,{server_initiated_close,320,\"go away\"}}}"
        );
        assert_eq!(
            forced_close_reason(&"x".repeat(13)),
            format!(
                "Reason: {{shutdown,\n            {{connection_closing,{{server_initiated_close,320,\"{}\"}}}}}}",
                "x".repeat(13)
            )
        );
        assert_eq!(
            forced_close_reason("Closed via management plugin"),
            "Reason: {shutdown,\n            {connection_closing,\n                {server_initiated_close,320,\"Closed via management plugin\"}}}"
        );
        assert_eq!(
            forced_close_reason(&"x".repeat(30)),
            format!(
                "Reason: {{shutdown,\n            {{connection_closing,\n                {{server_initiated_close,320,\n                    \"{}\"}}}}}}",
                "x".repeat(30)
            )
        );
    }
}
