//! Accepting AMQP connections.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use warren_core::Broker;

use crate::connection::{serve_connection, serve_tls_connection};
use crate::AmqpConfig;

/// Accepts connections until `shutdown` turns true, then waits for every connection to
/// finish closing (each sends `connection.close` with CONNECTION_FORCED).
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: AmqpConfig,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, None, broker, cfg, shutdown).await
}

/// The AMQPS listener: as [`serve`], each connection behind TLS.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    broker: Arc<Broker>,
    cfg: AmqpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_with(listener, Some(acceptor), broker, cfg, shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    broker: Arc<Broker>,
    cfg: AmqpConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => match &tls {
                    None => {
                        conns.spawn(serve_connection(sock, peer, broker.clone(), cfg.clone(), shutdown.clone()));
                    }
                    Some(a) => {
                        conns.spawn(serve_tls_connection(sock, a.clone(), peer, broker.clone(), cfg.clone(), shutdown.clone()));
                    }
                },
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}
