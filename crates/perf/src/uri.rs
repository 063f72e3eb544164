//! AMQP URIs: `amqp://user:pass@host:port/vhost`, as RabbitMQ's URI spec writes them
//! (percent-encoded user, password and vhost, so `%2f` is the vhost `/`).
//!
//! Defaults: user and password `guest`, host `localhost`, port 5672, vhost `/` (also for
//! an empty path, which is friendlier than the spec's empty vhost). A query string
//! (`?heartbeat=...`) is accepted and ignored. `amqps` is refused: the tool speaks plain TCP.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpUri {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: String,
}

impl AmqpUri {
    pub fn parse(s: &str) -> Result<AmqpUri, String> {
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("amqp") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("amqps") => {
                return Err(format!("{s}: amqps (TLS) is not supported; use amqp://"))
            }
            _ => return Err(format!("{s}: not an amqp:// URI")),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (decode(user)?, decode(pass)?),
                None => (decode(u)?, "guest".to_string()),
            },
            None => ("guest".to_string(), "guest".to_string()),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s}: unterminated IPv6 address"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port = match port {
            Some(p) if !p.is_empty() => p.parse().map_err(|_| format!("{s}: bad port {p:?}"))?,
            _ => 5672,
        };
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            decode(&host)?
        };
        let vhost = match path {
            None | Some("") => "/".to_string(),
            Some(p) => decode(p)?,
        };
        Ok(AmqpUri {
            host,
            port,
            user,
            password,
            vhost,
        })
    }

    /// `host:port`, bracketing IPv6 literals, for `TcpStream::connect`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URI without its password, for reports.
impl fmt::Display for AmqpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "amqp://{}@{}/{}",
            self.user,
            self.addr(),
            encode(&self.vhost)
        )
    }
}

fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_uri_with_encoded_vhost() {
        let u = AmqpUri::parse("amqp://guest:gu%40st@127.0.0.1:5673/%2f").unwrap();
        assert_eq!(u.user, "guest");
        assert_eq!(u.password, "gu@st");
        assert_eq!(u.addr(), "127.0.0.1:5673");
        assert_eq!(u.vhost, "/");
        assert_eq!(u.to_string(), "amqp://guest@127.0.0.1:5673/%2f");
    }

    #[test]
    fn defaults_and_ipv6() {
        let u = AmqpUri::parse("amqp://").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.vhost.as_str()),
            ("localhost", 5672, "/")
        );
        assert_eq!((u.user.as_str(), u.password.as_str()), ("guest", "guest"));
        let u = AmqpUri::parse("AMQP://bob@[::1]:5680/prod?heartbeat=10").unwrap();
        assert_eq!(u.addr(), "[::1]:5680");
        assert_eq!(u.user, "bob");
        assert_eq!(u.vhost, "prod");
    }

    #[test]
    fn refusals() {
        assert!(AmqpUri::parse("amqps://h/").unwrap_err().contains("TLS"));
        assert!(AmqpUri::parse("http://h/").is_err());
        assert!(AmqpUri::parse("amqp://h:port/").is_err());
        assert!(AmqpUri::parse("amqp://h/%zz").is_err());
    }
}
