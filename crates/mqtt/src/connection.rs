//! One MQTT connection: the first packet (CONNECT), then the reader loop: packets in,
//! batch by batch; PUBACKs out once their messages are on disk; keep-alive; takeover;
//! and the end of the connection with its will.
//!
//! Errors close only this connection. A packet that cannot be decoded is answered
//! before the close as MQTT says: in CONNACK while connecting (an unsupported protocol
//! level gets return code 1 in 3.x; MQTT 5 gets the reason code of the error), in
//! DISCONNECT with the reason code afterwards in MQTT 5, and by closing the socket in
//! 3.x, which has no way to say why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;
use tokio::time::Instant;
use warren_core::access::Access;
use warren_core::registry::{ChannelEntry, ConnectionEntry, Registration};
use warren_core::{ConnectionId, VHost};
use warren_mqtt_codec::{ByteStr, ConnAck, Disconnect, Packet, ProtocolVersion, ReasonCode};
use warren_websocket::{Outbound, Reader, SocketMeta, WakeBatch, Writer};

use crate::connect::WillMsg;
use crate::delivery::{Inflight, Session};
use crate::listener::Mqtt;
use crate::publish::PubAcks;
use crate::sessions::{Key, Live};

/// Why the connection ends, and whether its will is published.
pub(crate) struct End {
    pub reason: &'static str,
    /// MQTT 5: the DISCONNECT to send first, if any.
    pub disconnect: Option<(ReasonCode, String)>,
    pub will: bool,
}

impl End {
    pub fn error(code: ReasonCode, why: impl Into<String>) -> End {
        End {
            reason: "protocol error",
            disconnect: Some((code, why.into())),
            will: true,
        }
    }

    /// A refused PUBLISH or SUBSCRIBE closes the connection (RabbitMQ's
    /// `disconnect_on_unauthorized`); `disconnect` is the MQTT 5 DISCONNECT, if any.
    pub fn unauthorized(disconnect: Option<String>) -> End {
        End {
            reason: "authorization failure",
            disconnect: disconnect.map(|why| (ReasonCode::NOT_AUTHORIZED, why)),
            will: true,
        }
    }
}

/// One accepted and authenticated MQTT connection.
pub(crate) struct Conn {
    pub mqtt: Arc<Mqtt>,
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub version: ProtocolVersion,
    pub out: Arc<Outbound>,
    pub vhost: Arc<VHost>,
    pub user: String,
    /// The user's permissions in the vhost, compiled at CONNECT.
    pub access: Arc<Access>,
    /// This connection in the management registry (taken by `serve_connection` at the
    /// end, to deregister once the socket is done).
    pub registration: Option<Registration>,
    pub entry: Arc<ConnectionEntry>,
    /// The registry's channel of this connection (RabbitMQ shows one per MQTT
    /// connection): publishes are counted on it.
    pub channel: Arc<ChannelEntry>,
    pub client_id: String,
    pub key: Key,
    pub live: Arc<Live>,
    pub keep_alive: Duration,
    pub session: Arc<Session>,
    pub will: Option<WillMsg>,
    /// Seconds the session outlives the connection (`u32::MAX`: forever).
    pub session_expiry: u32,
    /// The session's queue name.
    pub queue_name: String,
    /// Whether the session queue is durable (a persistent session).
    pub durable: bool,
    /// Inbound topic aliases (MQTT 5).
    pub aliases: Vec<Option<ByteStr>>,
    pub acks: PubAcks,
    pub route_buf: Vec<Arc<warren_core::Queue>>,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve_connection(
    mut r: Reader,
    w: Writer,
    meta: SocketMeta,
    mqtt: Arc<Mqtt>,
    mut shutdown: watch::Receiver<bool>,
    websocket: bool,
) {
    let peer = meta.peer;
    let out = Arc::new(Outbound::new(false));
    let writer = tokio::spawn(out.clone().run_writer(w, None));
    let mut buf = BytesMut::new();
    let first = tokio::time::timeout(
        mqtt.cfg.connect_timeout,
        read_connect(&mut r, &mut buf, &mqtt, &out),
    )
    .await;
    let mut registration = None;
    match first {
        Err(_) => tracing::info!(%peer, "MQTT connection closed: no CONNECT in time"),
        Ok(None) => {}
        Ok(Some(connect)) => {
            if let Some(mut conn) =
                crate::connect::establish(&mqtt, *connect, meta, out.clone(), websocket).await
            {
                let end = conn.run(&mut r, buf, &mut shutdown).await;
                conn.finish(end);
                registration = conn.registration.take();
            }
        }
    }
    out.close();
    let _ = writer.await;
    // Deregistered while `r` still holds the socket open (`Registration::socket_closing`).
    drop(registration);
}

/// Reads the first packet. `None` if the connection is to be closed (refused, or not
/// MQTT at all); refusals have been written to `out`.
async fn read_connect(
    r: &mut Reader,
    buf: &mut BytesMut,
    mqtt: &Mqtt,
    out: &Outbound,
) -> Option<Box<warren_mqtt_codec::Connect>> {
    loop {
        let version = warren_mqtt_codec::peek_connect_version(buf);
        match warren_mqtt_codec::decode(buf, ProtocolVersion::V3_1_1, mqtt.cfg.max_connect_size) {
            Ok(Some(Packet::Connect(c))) => return Some(c),
            Ok(Some(other)) => {
                tracing::info!(packet = ?other.packet_type(), "MQTT connection closed: first packet is not CONNECT");
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                use warren_mqtt_codec::Error as E;
                let code = e.reason_code();
                let reply = match (version, &e) {
                    (Some(ProtocolVersion::V5), _) => Some((ProtocolVersion::V5, code)),
                    // 3.1.1 3.1.2.2: an unsupported level gets return code 1.
                    (_, E::UnsupportedProtocolVersion(_) | E::InvalidProtocolName) => {
                        Some((ProtocolVersion::V3_1_1, code))
                    }
                    _ => None,
                };
                tracing::info!(error = %e, "MQTT connection refused: malformed CONNECT");
                if let Some((v, code)) = reply {
                    send(
                        out,
                        v,
                        &Packet::ConnAck(ConnAck {
                            session_present: false,
                            code,
                            properties: Default::default(),
                        }),
                    );
                }
                return None;
            }
        }
        match r.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Encodes a packet into the output buffer.
pub(crate) fn send(out: &Outbound, version: ProtocolVersion, p: &Packet) {
    out.write(|b| {
        if let Err(e) = warren_mqtt_codec::encode(p, version, b) {
            tracing::error!(error = %e, "cannot encode an MQTT packet");
        }
    });
}

enum Flow {
    Continue,
    End(End),
}

impl Conn {
    pub fn send(&self, p: &Packet) {
        send(&self.out, self.version, p);
    }

    /// The reader loop. Returns why the connection ends.
    async fn run(
        &mut self,
        r: &mut Reader,
        mut buf: BytesMut,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let committer = self.mqtt.broker.storage.committer.clone();
        let mut synced = committer.subscribe();
        let entry = self.entry.clone();
        let mut alarms = self.mqtt.broker.alarms.subscribe();
        // MQTT 3.1.2.10: one and a half times the keep-alive without a packet.
        let idle_limit = (!self.keep_alive.is_zero()).then(|| self.keep_alive * 3 / 2);
        let mut deadline = idle_limit.map(|d| Instant::now() + d);
        loop {
            let flow = {
                let _wakes = WakeBatch::begin();
                let f = self.process_buffered(&mut buf);
                self.settle_batch();
                f
            };
            self.acks.flush(&self.out, self.version, committer.done());
            self.out.schedule();
            if let Flow::End(end) = flow {
                return end;
            }
            if self.session.state.lock().cancelled {
                return End {
                    reason: "session queue deleted",
                    disconnect: Some((
                        ReasonCode::ADMINISTRATIVE_ACTION,
                        "session queue deleted".into(),
                    )),
                    will: true,
                };
            }
            if buf.is_empty() && buf.capacity() > 0 {
                // Keep no memory while idle (see warren_websocket::transport).
                buf = BytesMut::new();
            }
            let blocked = *alarms.borrow_and_update();
            tokio::select! {
                res = r.read_buf(&mut buf), if !blocked => match res {
                    Ok(0) | Err(_) => {
                        return End { reason: "client closed the socket", disconnect: None, will: true };
                    }
                    Ok(_) => {
                        if let Some(d) = idle_limit {
                            deadline = Some(Instant::now() + d);
                        }
                    }
                },
                _ = alarms.changed() => {
                    // A resource alarm stops reading (TCP back-pressure on publishers),
                    // as RabbitMQ does; the keep-alive clock stops with it.
                    if let Some(d) = idle_limit {
                        deadline = Some(Instant::now() + d);
                    }
                }
                _ = synced.changed(), if self.acks.waiting() => {}
                _ = self.session.wake.notified() => {}
                _ = self.live.kick.notified() => {
                    tracing::warn!(client_id = %self.client_id, connection = self.id, "MQTT client taken over by a new connection with the same client id");
                    return End {
                        reason: "session taken over",
                        disconnect: Some((ReasonCode::SESSION_TAKEN_OVER, "another connection uses this client id".into())),
                        // RabbitMQ 3.10 sends no will on duplicate client id; MQTT 5 does.
                        will: self.version == ProtocolVersion::V5,
                    };
                }
                why = entry.close_requested() => {
                    // DELETE /api/connections/{name}: closed as RabbitMQ closes it (MQTT 5
                    // clients are told why first).
                    tracing::info!(client_id = %self.client_id, connection = self.id, reason = %why, "closing MQTT connection on request");
                    return End {
                        reason: "closed on request",
                        disconnect: Some((ReasonCode::ADMINISTRATIVE_ACTION, why)),
                        will: true,
                    };
                }
                _ = shutdown.changed() => {
                    return End {
                        reason: "broker shutdown",
                        disconnect: Some((ReasonCode::SERVER_SHUTTING_DOWN, "broker shutting down".into())),
                        will: false,
                    };
                }
                _ = sleep_until_opt(deadline), if !blocked => {
                    tracing::warn!(client_id = %self.client_id, connection = self.id, keep_alive = self.keep_alive.as_secs(), "MQTT keep-alive timeout");
                    return End {
                        reason: "keep-alive timeout",
                        disconnect: Some((ReasonCode::KEEP_ALIVE_TIMEOUT, "keep alive timeout".into())),
                        will: true,
                    };
                }
            }
        }
    }

    /// Handles every complete packet in `buf`.
    fn process_buffered(&mut self, buf: &mut BytesMut) -> Flow {
        loop {
            let packet = match warren_mqtt_codec::decode(
                buf,
                self.version,
                self.mqtt.cfg.max_packet_size,
            ) {
                Ok(Some(p)) => p,
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    tracing::warn!(client_id = %self.client_id, connection = self.id, error = %e, "MQTT packet cannot be decoded; closing");
                    return Flow::End(End::error(e.reason_code(), e.to_string()));
                }
            };
            let r = match packet {
                Packet::Publish(p) => self.publish(p),
                Packet::PubAck(a) => {
                    self.puback(a.packet_id);
                    Ok(())
                }
                Packet::Subscribe(s) => self.subscribe(s),
                Packet::Unsubscribe(u) => self.unsubscribe(u),
                Packet::PingReq => {
                    self.send(&Packet::PingResp);
                    Ok(())
                }
                Packet::Disconnect(d) => return Flow::End(self.disconnect(d)),
                Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => Err(End::error(
                    ReasonCode::PROTOCOL_ERROR,
                    "QoS 2 is not supported",
                )),
                Packet::Connect(_) => Err(End::error(ReasonCode::PROTOCOL_ERROR, "second CONNECT")),
                Packet::Auth(_) => Err(End::error(
                    ReasonCode::PROTOCOL_ERROR,
                    "no authentication method was negotiated",
                )),
                other => Err(End::error(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("{:?} is a server-to-client packet", other.packet_type()),
                )),
            };
            if let Err(end) = r {
                return Flow::End(end);
            }
        }
    }

    /// A PUBACK from the client: the delivery is done.
    fn puback(&mut self, packet_id: u16) {
        let mut st = self.session.state.lock();
        // As RabbitMQ: an unknown id (a bogus client, a QoS downgrade) is ignored.
        if let Some(Inflight::Queued(env)) = st.inflight.remove(&packet_id) {
            st.to_settle.push(env);
        }
    }

    /// Settles what the session collected: acked deliveries and those that needed no ack.
    fn settle_batch(&mut self) {
        let (envs, queue, consumer) = {
            let mut st = self.session.state.lock();
            if st.to_settle.is_empty() {
                return;
            }
            (
                std::mem::take(&mut st.to_settle),
                st.queue.clone(),
                st.consumer.clone(),
            )
        };
        if let Some(q) = queue {
            q.settle(&envs, true);
        }
        if let Some(c) = consumer {
            c.settled(envs.len() as u32);
            // Not `if let` on the lock: its guard would live through `dispatch`.
            let q = self.session.state.lock().queue.clone();
            if let Some(q) = q {
                q.dispatch();
            }
        }
    }

    /// DISCONNECT from the client.
    fn disconnect(&mut self, d: Disconnect) -> End {
        if let Some(secs) = d.properties.session_expiry_interval {
            if self.session_expiry == 0 && secs != 0 {
                // MQTT 5 3.14.2.2.2.
                return End::error(
                    ReasonCode::PROTOCOL_ERROR,
                    "session expiry interval set on DISCONNECT after 0 on CONNECT",
                );
            }
            self.session_expiry = secs.min(self.mqtt.cfg.max_session_expiry);
        }
        End {
            reason: "client disconnected",
            disconnect: None,
            will: d.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        }
    }

    /// Ends the connection: DISCONNECT (MQTT 5), in-flight messages back to the queue,
    /// the consumer gone, the will and the session's expiry armed, the client id freed.
    pub(crate) fn finish(&mut self, end: End) {
        tracing::info!(client_id = %self.client_id, connection = self.id, peer = %self.peer, reason = end.reason, "MQTT connection closed");
        if let (Some((code, why)), ProtocolVersion::V5) = (&end.disconnect, self.version) {
            let mut d = Disconnect::new(*code);
            d.properties.reason_string = Some(ByteStr::from(why.as_str()));
            self.send(&Packet::Disconnect(d));
        }
        let (queue, consumer, inflight, to_settle) = {
            let mut st = self.session.state.lock();
            st.closed = true;
            let inflight: Vec<_> = st
                .inflight
                .drain()
                .filter_map(|(_, f)| match f {
                    Inflight::Queued(e) => Some(e),
                    Inflight::Retained => None,
                })
                .collect();
            (
                st.queue.take(),
                st.consumer.take(),
                inflight,
                std::mem::take(&mut st.to_settle),
            )
        };
        if let Some(q) = &queue {
            if let Some(c) = &consumer {
                self.out.remove_consumed_queue(q);
                self.vhost.cancel(q, self.id, &c.tag);
            }
            if !to_settle.is_empty() {
                q.settle(&to_settle, true);
            }
            if !inflight.is_empty() {
                q.requeue(inflight);
            }
        }
        self.vhost.connection_closed(self.id);
        // A session that ends now goes with its queue.
        let mut expiry = None;
        if self.durable {
            match self.session_expiry {
                0 => {
                    let _ = self
                        .vhost
                        .delete_queue(&self.queue_name, false, false, self.id);
                }
                u32::MAX => {}
                secs => expiry = Some((self.queue_name.clone(), Duration::from_secs(secs.into()))),
            }
        }
        let will = if end.will { self.will.take() } else { None };
        let will = will.map(|w| {
            let delay = Duration::from_secs(w.delay.into());
            (w, delay)
        });
        match will {
            Some((w, d)) if d.is_zero() => {
                crate::publish::publish_will(&self.mqtt, &w);
                self.mqtt
                    .sessions
                    .schedule_end(&self.mqtt, self.key.clone(), None, expiry);
            }
            will => {
                let will = if self.session_expiry == 0 {
                    // The session ends now, and the will with it (MQTT 5 3.1.3.2.2).
                    if let Some((w, _)) = will {
                        crate::publish::publish_will(&self.mqtt, &w);
                    }
                    None
                } else {
                    will
                };
                self.mqtt
                    .sessions
                    .schedule_end(&self.mqtt, self.key.clone(), will, expiry);
            }
        }
        self.mqtt.sessions.release(&self.key, &self.live);
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
