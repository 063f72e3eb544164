//! The MQTT listeners (plain, TLS and WebSocket) and the adapter state they share.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use warren_amqp_codec::ShortStr;
use warren_core::Broker;
use warren_websocket::transport::{self, WsFraming};
use warren_websocket::{accept_loop, SocketMeta, WsOptions};

use crate::connection::serve_connection;
use crate::retained::{RetainedStore, SYNC_EVERY};
use crate::sessions::Sessions;
use crate::MqttConfig;

/// The adapter state every MQTT connection of a broker shares, whichever listener
/// accepted it: the client id registry (a WebSocket client takes over a TCP client's
/// session like any other), pending wills and session expiries, retained messages.
pub struct Mqtt {
    pub broker: Arc<Broker>,
    pub cfg: MqttConfig,
    pub exchange: ShortStr,
    pub retained: Arc<RetainedStore>,
    pub(crate) sessions: Sessions,
}

/// One [`Mqtt`] per broker, so that [`serve`], [`serve_tls`] and [`serve_ws`] share it.
static STATES: Mutex<Vec<(Weak<Broker>, Weak<Mqtt>)>> = Mutex::new(Vec::new());

impl Mqtt {
    /// The adapter state for `broker`, created on first use (with that call's `cfg`).
    pub fn for_broker(broker: &Arc<Broker>, cfg: MqttConfig) -> Result<Arc<Mqtt>, String> {
        let mut states = STATES.lock();
        states.retain(|(b, m)| b.strong_count() > 0 && m.strong_count() > 0);
        if let Some(m) = states
            .iter()
            .find(|(b, _)| b.upgrade().is_some_and(|b| Arc::ptr_eq(&b, broker)))
            .and_then(|(_, m)| m.upgrade())
        {
            return Ok(m);
        }
        let data_dir = &broker.config.data_dir;
        let retained = RetainedStore::open(data_dir)
            .map_err(|e| format!("cannot open the MQTT retained message store: {e}"))?;
        let m = Arc::new(Mqtt {
            broker: broker.clone(),
            exchange: ShortStr::from(cfg.exchange.as_str()),
            retained,
            sessions: Sessions::new(data_dir),
            cfg,
        });
        m.sessions.recover(&m);
        let weak = Arc::downgrade(&m);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SYNC_EVERY).await;
                let Some(m) = weak.upgrade() else { return };
                let r = m.retained.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = r.sync() {
                        tracing::error!(error = %e, "cannot sync the MQTT retained message store");
                    }
                })
                .await;
            }
        });
        states.push((Arc::downgrade(broker), Arc::downgrade(&m)));
        Ok(m)
    }

    fn finish(&self) {
        if let Err(e) = self.retained.sync() {
            tracing::error!(error = %e, "cannot sync the MQTT retained message store");
        }
    }
}

/// Serves MQTT on `listener` until `shutdown` turns true, then closes every connection
/// (MQTT 5 clients get DISCONNECT 0x8B, server shutting down) and syncs the retained
/// message store.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: MqttConfig,
    shutdown: watch::Receiver<bool>,
) {
    let mqtt = match Mqtt::for_broker(&broker, cfg) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}; MQTT is not served");
            return;
        }
    };
    let m = mqtt.clone();
    let sd = shutdown.clone();
    accept_loop(listener, shutdown, "MQTT", move |sock: TcpStream, peer| {
        let meta = SocketMeta::of(&sock, peer);
        let (r, w) = transport::tcp(sock);
        serve_connection(r, w, meta, m.clone(), sd.clone(), false)
    })
    .await;
    mqtt.finish();
}

/// Serves MQTT over TLS (MQTTS, RabbitMQ's port 8883), sharing sessions and retained
/// messages with [`serve`]. The TLS handshake counts towards the CONNECT timeout; a
/// verified client certificate's common name can log in (`mqtt.ssl_cert_login`).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<warren_tls::ServerConfig>,
    broker: Arc<Broker>,
    cfg: MqttConfig,
    shutdown: watch::Receiver<bool>,
) {
    let mqtt = match Mqtt::for_broker(&broker, cfg) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}; MQTTS is not served");
            return;
        }
    };
    let acceptor = warren_tls::TlsAcceptor::from(tls);
    let m = mqtt.clone();
    let sd = shutdown.clone();
    accept_loop(
        listener,
        shutdown,
        "MQTTS",
        move |sock: TcpStream, peer: SocketAddr| {
            let (m, sd, acceptor) = (m.clone(), sd.clone(), acceptor.clone());
            async move {
                let mut meta = SocketMeta::of(&sock, peer);
                let timeout = m.cfg.connect_timeout;
                let Some((stream, client)) =
                    warren_tls::accept(&acceptor, sock, peer, timeout, "MQTTS").await
                else {
                    return;
                };
                meta.tls = Some(client);
                let (r, w) = transport::tls(stream);
                serve_connection(r, w, meta, m, sd, false).await;
            }
        },
    )
    .await;
    mqtt.finish();
}

/// Serves MQTT over WebSocket (`ws://host:port/ws`, subprotocol `mqtt`, as RabbitMQ's
/// Web-MQTT), sharing sessions and retained messages with [`serve`].
pub async fn serve_ws(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: MqttConfig,
    shutdown: watch::Receiver<bool>,
) {
    let mqtt = match Mqtt::for_broker(&broker, cfg) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}; Web-MQTT is not served");
            return;
        }
    };
    let opts = Arc::new(WsOptions {
        path: mqtt.cfg.ws_path.clone(),
        // MQTT.js asks for "mqtt" (3.1.1 and 5) or "mqttv3.1".
        protocols: vec!["mqtt", "mqttv3.1"],
        handshake_timeout: Duration::from_secs(10),
    });
    let m = mqtt.clone();
    let sd = shutdown.clone();
    accept_loop(
        listener,
        shutdown,
        "Web-MQTT",
        move |sock: TcpStream, peer: SocketAddr| {
            let (m, sd, opts) = (m.clone(), sd.clone(), opts.clone());
            async move {
                let meta = SocketMeta::of(&sock, peer);
                match warren_websocket::upgrade(sock, &opts).await {
                    Ok(ws) => {
                        let (r, w) = transport::websocket(ws, WsFraming::Binary);
                        serve_connection(r, w, meta, m, sd, true).await;
                    }
                    Err(e) => tracing::info!(%peer, error = %e, "Web-MQTT upgrade failed"),
                }
            }
        },
    )
    .await;
    mqtt.finish();
}
