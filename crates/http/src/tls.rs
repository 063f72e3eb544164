//! The HTTPS listener: an `axum` listener whose connections arrive already through the
//! TLS handshake. Handshakes run on their own tasks beside the accept loop, so a client
//! that connects and stalls delays nobody else.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::{Listener, ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use warren_tls::TlsStream;

/// How long a client may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Stream = TlsStream<TcpStream>;

/// Connections through their handshake, waiting for the HTTP server to take them.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(Stream, SocketAddr)>,
    local: SocketAddr,
}

/// The HTTPS listener as served: wrapped in `tap_io`, which turns Nagle off on each
/// connection, and through which axum also hands the peer address to the API (its
/// `ConnectInfo<SocketAddr>` is implemented for `TapIo` listeners).
pub(crate) type Https = TapIo<TlsListener, fn(&mut Stream)>;

impl TlsListener {
    /// Starts accepting on `listener`. The accept task ends when the returned listener
    /// is dropped (the server stopped).
    pub fn start(listener: TcpListener, tls: Arc<warren_tls::ServerConfig>) -> Https {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = mpsc::channel(64);
        let acceptor = warren_tls::TlsAcceptor::from(tls);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tx.closed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((sock, peer)) => {
                            let (tx, acceptor) = (tx.clone(), acceptor.clone());
                            tokio::spawn(async move {
                                if let Some((stream, _)) = warren_tls::accept(
                                    &acceptor, sock, peer, HANDSHAKE_TIMEOUT, "HTTPS",
                                )
                                .await
                                {
                                    let _ = tx.send((stream, peer)).await;
                                }
                            });
                        }
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, listener = "HTTPS", "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        });
        let nodelay: fn(&mut Stream) = |s| {
            let _ = s.get_ref().0.set_nodelay(true);
        };
        TlsListener { ready, local }.tap_io(nodelay)
    }
}

impl Listener for TlsListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task holds a sender for as long as this listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
