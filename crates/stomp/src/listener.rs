//! The STOMP listeners (plain, TLS and WebSocket).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use warren_core::Broker;
use warren_websocket::transport::{self, WsFraming};
use warren_websocket::{accept_loop, SocketMeta, WsOptions};

use crate::connection::serve_connection;
use crate::StompConfig;

/// What every STOMP connection shares.
pub(crate) struct Shared {
    pub broker: Arc<Broker>,
    pub cfg: StompConfig,
}

/// Serves STOMP on `listener` until `shutdown` turns true, then closes every
/// connection.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: StompConfig,
    shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared { broker, cfg });
    let sd = shutdown.clone();
    accept_loop(listener, shutdown, "STOMP", move |sock: TcpStream, peer| {
        let meta = SocketMeta::of(&sock, peer);
        let (r, w) = transport::tcp(sock);
        serve_connection(r, w, meta, shared.clone(), sd.clone(), false)
    })
    .await;
}

/// Serves STOMP over TLS (RabbitMQ's port 61614). The TLS handshake counts towards the
/// login timeout; a verified client certificate's common name can log in
/// (`stomp.ssl_cert_login`).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<warren_tls::ServerConfig>,
    broker: Arc<Broker>,
    cfg: StompConfig,
    shutdown: watch::Receiver<bool>,
) {
    let acceptor = warren_tls::TlsAcceptor::from(tls);
    let shared = Arc::new(Shared { broker, cfg });
    let sd = shutdown.clone();
    accept_loop(
        listener,
        shutdown,
        "STOMP over TLS",
        move |sock: TcpStream, peer: SocketAddr| {
            let (shared, sd, acceptor) = (shared.clone(), sd.clone(), acceptor.clone());
            async move {
                let mut meta = SocketMeta::of(&sock, peer);
                let timeout = shared.cfg.login_timeout;
                let Some((stream, client)) =
                    warren_tls::accept(&acceptor, sock, peer, timeout, "STOMP over TLS").await
                else {
                    return;
                };
                meta.tls = Some(client);
                let (r, w) = transport::tls(stream);
                serve_connection(r, w, meta, shared, sd, false).await;
            }
        },
    )
    .await;
}

/// Serves STOMP over WebSocket (`ws://host:port/ws`, subprotocols `v12.stomp`,
/// `v11.stomp`, `v10.stomp`, as RabbitMQ's Web-STOMP); each frame goes in its own
/// WebSocket message, as stomp.js expects.
pub async fn serve_ws(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: StompConfig,
    shutdown: watch::Receiver<bool>,
) {
    let opts = Arc::new(WsOptions {
        path: cfg.ws_path.clone(),
        protocols: vec!["v12.stomp", "v11.stomp", "v10.stomp", "stomp"],
        handshake_timeout: Duration::from_secs(10),
    });
    let shared = Arc::new(Shared { broker, cfg });
    let sd = shutdown.clone();
    accept_loop(
        listener,
        shutdown,
        "Web-STOMP",
        move |sock: TcpStream, peer: SocketAddr| {
            let (shared, sd, opts) = (shared.clone(), sd.clone(), opts.clone());
            async move {
                let meta = SocketMeta::of(&sock, peer);
                match warren_websocket::upgrade(sock, &opts).await {
                    Ok(ws) => {
                        let (r, w) = transport::websocket(ws, WsFraming::PerFrame);
                        serve_connection(r, w, meta, shared, sd, true).await;
                    }
                    Err(e) => tracing::info!(%peer, error = %e, "Web-STOMP upgrade failed"),
                }
            }
        },
    )
    .await;
}
