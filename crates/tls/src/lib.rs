//! TLS for every listener: builds the rustls server configuration from RabbitMQ's
//! `ssl_options` (certificate, key, CA bundle, `verify`, `fail_if_no_peer_cert`), runs
//! the server side of the handshake on accepted sockets for every protocol adapter, and
//! reads the common name of a verified client certificate, which SASL `EXTERNAL` (and
//! MQTT's `ssl_cert_login`) authenticates as (RabbitMQ's `rabbitmq_auth_mechanism_ssl`
//! with `ssl_cert_login_from = common_name`).

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
pub use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
pub use rustls::ServerConfig;

/// RabbitMQ's `ssl_options`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    /// CA bundle client certificates are verified against.
    pub cacertfile: Option<PathBuf>,
    /// `verify_peer`: ask for a client certificate and verify it.
    pub verify_peer: bool,
    /// With `verify_peer`: refuse clients that present none.
    pub fail_if_no_peer_cert: bool,
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let list: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(f)).collect();
    let list = list.map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if list.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(list)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| format!("{}: not a PEM key file: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key in it", path.display()))
}

/// The server configuration for `opts`, with clear errors for unreadable or mismatched
/// files (the broker refuses to start on them).
pub fn server_config(opts: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if opts.verify_peer {
        let ca = opts.cacertfile.as_ref().ok_or(
            "verifying client certificates (verify_peer) needs a CA certificate file (cacertfile)",
        )?;
        let mut roots = RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let v = if opts.fail_if_no_peer_cert {
            v
        } else {
            v.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
    } else {
        builder.with_no_client_auth()
    };
    let cfg = builder
        .with_single_cert(certs(&opts.certfile)?, key(&opts.keyfile)?)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    Ok(Arc::new(cfg))
}

/// What the TLS handshake established about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The subject common name of the client's certificate, when it presented one (it
    /// was verified against the CA bundle, or the handshake would have failed).
    pub common_name: Option<String>,
}

/// Runs the server side of the TLS handshake on an accepted socket. A handshake that
/// fails or takes longer than `timeout` (a client that connects and sends nothing must
/// not hold the socket forever) is logged, naming the listener `what`, and gives `None`.
pub async fn accept(
    acceptor: &TlsAcceptor,
    sock: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    what: &str,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    match tokio::time::timeout(timeout, acceptor.accept(sock)).await {
        Ok(Ok(tls)) => {
            let common_name = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c));
            Some((tls, Peer { common_name }))
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, listener = what, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, listener = what, "TLS handshake timed out");
            None
        }
    }
}

/// A DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject's common name (OID 2.5.4.3) of a DER certificate.
pub fn common_name(cert: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (_, certificate, _) = der(cert)?;
    let (_, mut tbs, _) = der(certificate)?;
    // version [0] (optional), serial, signature algorithm, issuer, validity, subject
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    let mut field = tbs;
    for _ in 0..4 {
        field = der(field)?.2;
    }
    let (_, mut subject, _) = der(field)?;
    while !subject.is_empty() {
        let (_, set, rest) = der(subject)?;
        subject = rest;
        let (_, attr, _) = der(set)?;
        let (_, oid, value) = der(attr)?;
        if oid == CN {
            let (_, text, _) = der(value)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_truncation() {
        assert_eq!(
            der(&[0x30, 0x02, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(
            der(&[0x30, 0x81, 0x01, 7]),
            Some((0x30, &[7u8][..], &[][..]))
        );
        assert_eq!(der(&[0x30, 0x05, 1]), None);
        assert_eq!(common_name(&[0x30, 0x00]), None);
    }
}
