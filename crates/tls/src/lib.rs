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
    /// The session in RabbitMQ's (Erlang `ssl`'s) terms: see [`Session`].
    pub session: Session,
}

/// A TLS session's protocol version and cipher suite named as Erlang's `ssl` module
/// names them, which is what RabbitMQ's management API shows (`ssl_protocol`,
/// `ssl_key_exchange`, `ssl_cipher`, `ssl_hash`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// "tlsv1.2", "tlsv1.3".
    pub protocol: String,
    /// "ecdhe_rsa", "ecdhe_ecdsa"; "any" in TLS 1.3, where the suite does not fix it.
    pub key_exchange: String,
    /// "aes_128_gcm", "aes_256_gcm", "chacha20_poly1305".
    pub cipher: String,
    /// The MAC: "aead" for every suite rustls offers.
    pub hash: String,
}

impl Session {
    /// From rustls' names: `TLSv1_3` and `TLS13_AES_256_GCM_SHA384`, or `TLSv1_2` and
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    fn from_rustls(version: &str, suite: &str) -> Session {
        let protocol = version.to_ascii_lowercase().replace('_', ".");
        let (key_exchange, rest) = match suite.strip_prefix("TLS13_") {
            Some(rest) => ("any".to_string(), rest),
            None => {
                let rest = suite.strip_prefix("TLS_").unwrap_or(suite);
                match rest.split_once("_WITH_") {
                    Some((kx, rest)) => (kx.to_ascii_lowercase(), rest),
                    None => (String::new(), rest),
                }
            }
        };
        // The PRF hash ends the name (`_SHA256`); every suite rustls has is AEAD.
        let cipher = rest
            .rsplit_once("_SHA")
            .map_or(rest, |(c, _)| c)
            .to_ascii_lowercase();
        Session {
            protocol,
            key_exchange,
            cipher,
            hash: "aead".into(),
        }
    }
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
            let conn = tls.get_ref().1;
            let common_name = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c));
            let version = conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let suite = conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or("");
            let session = Session::from_rustls(version, suite);
            Some((
                tls,
                Peer {
                    common_name,
                    session,
                },
            ))
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
    fn sessions_in_erlang_terms() {
        let s = Session::from_rustls("TLSv1_3", "TLS13_AES_256_GCM_SHA384");
        assert_eq!(
            (&*s.protocol, &*s.key_exchange, &*s.cipher, &*s.hash),
            ("tlsv1.3", "any", "aes_256_gcm", "aead")
        );
        let s = Session::from_rustls("TLSv1_2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
        assert_eq!(
            (&*s.protocol, &*s.key_exchange, &*s.cipher),
            ("tlsv1.2", "ecdhe_rsa", "chacha20_poly1305")
        );
    }

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
