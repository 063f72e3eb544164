//! The WebSocket upgrade for an accepted TCP socket, as RabbitMQ's Web-MQTT and
//! Web-STOMP plugins do it: one HTTP path (`/ws`), and the subprotocol the browser
//! client asks for echoed back (a browser drops a connection whose handshake does not
//! confirm a subprotocol it offered).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::WebSocketStream;

/// What an endpoint accepts.
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// The HTTP path of the endpoint (RabbitMQ: `/ws`).
    pub path: String,
    /// Subprotocols we speak, in our order of preference; the first one the client
    /// offers is chosen. A client that offers none is accepted without one.
    pub protocols: Vec<&'static str>,
    /// How long the HTTP upgrade may take.
    pub handshake_timeout: Duration,
}

/// Performs the upgrade. `Err` carries why it failed (for the log); the socket is then
/// dropped, after an HTTP error response where there is one to give.
// The callback's signature (and its large error type) is tungstenite's.
#[allow(clippy::result_large_err)]
pub async fn upgrade(
    sock: TcpStream,
    opts: &WsOptions,
) -> Result<WebSocketStream<TcpStream>, String> {
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path();
        if path != opts.path {
            let mut e = ErrorResponse::new(Some(format!("no WebSocket endpoint at {path}\n")));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        let offered = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>();
        if let Some(p) = opts
            .protocols
            .iter()
            .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
        {
            resp.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(p));
        } else if !offered.is_empty() {
            let mut e = ErrorResponse::new(Some(format!(
                "none of the subprotocols {offered:?} is supported; use one of {:?}\n",
                opts.protocols
            )));
            *e.status_mut() = StatusCode::BAD_REQUEST;
            return Err(e);
        }
        Ok(resp)
    };
    match tokio::time::timeout(
        opts.handshake_timeout,
        tokio_tungstenite::accept_hdr_async(sock, callback),
    )
    .await
    {
        Ok(Ok(ws)) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("WebSocket handshake timed out".into()),
    }
}
