//! The configuration file, in RabbitMQ's `rabbitmq.conf` syntax (`key = value` lines,
//! `#` comments), for the keys a user migrating from RabbitMQ has. Each key maps onto a
//! command-line setting; a flag or `WARREN_*` variable given explicitly wins over the
//! file. Unknown keys are reported by name and skipped; invalid values stop the start.

use std::net::IpAddr;

use crate::size::parse_size;

/// One setting the file makes, in the terms of the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `(flag id, value)` for a flag whose value parses from text, e.g. ("amqp_port", "5673").
    Flag(&'static str, String),
    Bind(IpAddr),
    DefaultUser(String),
    DefaultPass(String),
    DefaultVhost(String),
    /// `loopback_users.<name> = true|false`
    LoopbackUser(String, bool),
    /// `loopback_users = none`
    NoLoopbackUsers,
    /// `disk_free_limit.relative`: a multiple of the machine's memory.
    DiskFreeRelative(f64),
    LogLevel(String),
}

/// What the file says: settings, and warnings about keys it skipped.
#[derive(Debug, Default)]
pub struct Parsed {
    pub settings: Vec<Setting>,
    /// For each setting, the line and key it came from (for error messages).
    pub origins: Vec<(usize, String)>,
    pub warnings: Vec<String>,
}

/// Parses a `rabbitmq.conf`. Errors name the line and key.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected 'key = value', got '{line}'",
                n + 1
            ));
        };
        let key = key.trim();
        // A trailing comment is not part of the value (cuttlefish allows them).
        let value = value.split(" #").next().unwrap_or("").trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let bad = |why: String| format!("line {}: invalid value for '{key}': {why}", n + 1);
        match setting(key, value).map_err(bad)? {
            Some(s) => {
                out.origins
                    .extend(std::iter::repeat_n((n + 1, key.to_string()), s.len()));
                out.settings.extend(s);
            }
            None => out.warnings.push(format!(
                "configuration key '{key}' (line {}) is not supported by Warren and was ignored",
                n + 1
            )),
        }
    }
    Ok(out)
}

fn port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .map_err(|_| format!("'{v}' is not a port number"))
}

/// `5672`, `127.0.0.1:5672` or `:::5672`, as RabbitMQ's listener keys take them.
fn listener(flag: &'static str, v: &str) -> Result<Vec<Setting>, String> {
    if v == "none" {
        return Ok(vec![Setting::Flag(flag, "0".into())]);
    }
    if let Ok(p) = port(v) {
        return Ok(vec![Setting::Flag(flag, p.to_string())]);
    }
    let (ip, p) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("'{v}' is neither a port nor address:port"))?;
    let ip: IpAddr = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .or_else(|_| {
            if ip == "::" {
                Ok("::".parse().unwrap())
            } else {
                Err(())
            }
        })
        .map_err(|_| format!("'{ip}' is not an IP address"))?;
    Ok(vec![
        Setting::Bind(ip),
        Setting::Flag(flag, port(p)?.to_string()),
    ])
}

fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

/// `verify_peer` or `verify_none`, as the `--*-verify-peer` flag's value.
fn verify(v: &str) -> Result<&'static str, String> {
    match v {
        "verify_peer" => Ok("true"),
        "verify_none" => Ok("false"),
        _ => Err(format!("'{v}' is not verify_peer or verify_none")),
    }
}

fn number(v: &str) -> Result<String, String> {
    v.parse::<u64>()
        .map(|n| n.to_string())
        .map_err(|_| format!("'{v}' is not a non-negative integer"))
}

/// The settings one key makes; `None` for a key we do not read.
fn setting(key: &str, v: &str) -> Result<Option<Vec<Setting>>, String> {
    use Setting::*;
    let one = |s: Setting| Ok(Some(vec![s]));
    match key {
        "listeners.tcp.default" => listener("amqp_port", v).map(Some),
        "listeners.tcp" if v == "none" => one(Flag("amqp_port", "0".into())),
        "management.tcp.port" => one(Flag("http_port", port(v)?.to_string())),
        "management.tcp.ip" => one(Bind(
            v.parse()
                .map_err(|_| format!("'{v}' is not an IP address"))?,
        )),
        "prometheus.tcp.port" => one(Flag("prometheus_port", port(v)?.to_string())),
        "mqtt.listeners.tcp.default" => listener("mqtt_port", v).map(Some),
        "stomp.listeners.tcp.default" => listener("stomp_port", v).map(Some),
        "mqtt.exchange" => one(Flag("mqtt_exchange", v.into())),
        "mqtt.max_packet_size_authenticated" => one(Flag("mqtt_max_packet_size", v.into())),
        "web_mqtt.tcp.port" => one(Flag("web_mqtt_port", port(v)?.to_string())),
        "web_stomp.tcp.port" => one(Flag("web_stomp_port", port(v)?.to_string())),
        "default_user" => one(DefaultUser(v.into())),
        "default_pass" => one(DefaultPass(v.into())),
        "default_vhost" => one(DefaultVhost(v.into())),
        "loopback_users" if v == "none" => one(NoLoopbackUsers),
        k if k.starts_with("loopback_users.") => one(LoopbackUser(
            k["loopback_users.".len()..].into(),
            boolean(v)?,
        )),
        "vm_memory_high_watermark.relative" => {
            let f: f64 = v.parse().map_err(|_| format!("'{v}' is not a number"))?;
            if f.is_nan() || f <= 0.0 {
                return Err(format!("'{v}' must be above 0"));
            }
            one(Flag("vm_memory_high_watermark", f.to_string()))
        }
        "vm_memory_high_watermark.absolute" => {
            parse_size(v)?;
            one(Flag("vm_memory_high_watermark_absolute", v.into()))
        }
        "disk_free_limit.absolute" => {
            parse_size(v)?;
            one(Flag("disk_free_limit", v.into()))
        }
        "disk_free_limit.relative" => {
            let f: f64 = v.parse().map_err(|_| format!("'{v}' is not a number"))?;
            one(DiskFreeRelative(f))
        }
        "heartbeat" => one(Flag("heartbeat", number(v)?)),
        "frame_max" => one(Flag("frame_max", number(v)?)),
        "channel_max" => one(Flag("channel_max", number(v)?)),
        "max_message_size" => one(Flag("max_message_size", number(v)?)),
        "consumer_timeout" => one(Flag("consumer_timeout", number(v)?)),
        "handshake_timeout" => one(Flag("handshake_timeout", number(v)?)),
        "collect_statistics_interval" => {
            let ms: u64 = v
                .parse()
                .map_err(|_| format!("'{v}' is not a number of ms"))?;
            one(Flag("stats_interval", (ms as f64 / 1000.0).to_string()))
        }
        "load_definitions" | "definitions.local.path" => one(Flag("load_definitions", v.into())),
        "definitions.import_backend" if v == "local_filesystem" => Ok(Some(vec![])),
        "log.console.level" | "log.default.level" => match v {
            "debug" | "info" | "warning" | "error" | "critical" | "none" => one(LogLevel(v.into())),
            _ => Err(format!(
                "'{v}' is not one of debug, info, warning, error, critical, none"
            )),
        },
        // Warren logs to the console (standard error) only.
        "log.console" => boolean(v).map(|_| Some(vec![])),
        "listeners.ssl.default" => listener("amqps_port", v).map(Some),
        "ssl_options.certfile" => one(Flag("tls_cert", v.into())),
        "ssl_options.keyfile" => one(Flag("tls_key", v.into())),
        "ssl_options.cacertfile" => one(Flag("tls_ca", v.into())),
        "ssl_options.verify" => one(Flag("tls_verify_peer", verify(v)?.into())),
        "ssl_options.fail_if_no_peer_cert" => {
            one(Flag("tls_fail_if_no_peer_cert", boolean(v)?.to_string()))
        }
        "listeners.ssl" if v == "none" => one(Flag("amqps_port", "0".into())),
        "management.ssl.port" => one(Flag("https_port", port(v)?.to_string())),
        "management.ssl.certfile" => one(Flag("https_cert", v.into())),
        "management.ssl.keyfile" => one(Flag("https_key", v.into())),
        "management.ssl.cacertfile" => one(Flag("https_ca", v.into())),
        "management.ssl.verify" => one(Flag("https_verify_peer", verify(v)?.into())),
        "management.ssl.fail_if_no_peer_cert" => {
            one(Flag("https_fail_if_no_peer_cert", boolean(v)?.to_string()))
        }
        "mqtt.listeners.ssl.default" => listener("mqtts_port", v).map(Some),
        "mqtt.listeners.ssl" if v == "none" => one(Flag("mqtts_port", "0".into())),
        "mqtt.ssl_cert_login" => one(Flag("mqtt_ssl_cert_login", boolean(v)?.to_string())),
        "stomp.listeners.ssl.default" => listener("stomps_port", v).map(Some),
        "stomp.listeners.ssl" if v == "none" => one(Flag("stomps_port", "0".into())),
        "stomp.ssl_cert_login" => one(Flag("stomp_ssl_cert_login", boolean(v)?.to_string())),
        k if k.starts_with("listeners.ssl.")
            || k.starts_with("ssl_options.")
            || k.starts_with("management.ssl.")
            || k.starts_with("mqtt.listeners.ssl.")
            || k.starts_with("stomp.listeners.ssl.") =>
        {
            // Refused rather than ignored: a TLS setting left out (a key password, a
            // second listener) could expose what the file meant to protect.
            Err(format!("'{k}' is not supported by Warren; the TLS keys it reads are the listeners' ports, ssl_options.* and management.ssl.* certfile, keyfile, cacertfile, verify and fail_if_no_peer_cert, and mqtt/stomp.ssl_cert_login"))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_comments_and_errors() {
        let p = parse(
            "# comment\n\nlisteners.tcp.default = 127.0.0.1:5673\nheartbeat = 30 # trailing\n\
             loopback_users.guest = false\nsome.unknown.key = 1\ndefault_user = \"admin\"\n",
        )
        .unwrap();
        assert_eq!(
            p.settings,
            vec![
                Setting::Bind("127.0.0.1".parse().unwrap()),
                Setting::Flag("amqp_port", "5673".into()),
                Setting::Flag("heartbeat", "30".into()),
                Setting::LoopbackUser("guest".into(), false),
                Setting::DefaultUser("admin".into()),
            ]
        );
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].contains("'some.unknown.key'"));
        let e = parse("heartbeat = soon\n").unwrap_err();
        assert_eq!(
            e,
            "line 1: invalid value for 'heartbeat': 'soon' is not a non-negative integer"
        );
        assert!(parse("just words\n")
            .unwrap_err()
            .contains("expected 'key = value'"));
        assert!(parse("management.ssl.password = secret\n")
            .unwrap_err()
            .contains("'management.ssl.password' is not supported"));
        assert_eq!(
            parse(
                "management.ssl.port = 15671\nmanagement.ssl.verify = verify_peer\n\
                 mqtt.listeners.ssl.default = 8884\nstomp.listeners.ssl = none\n\
                 mqtt.ssl_cert_login = true\n"
            )
            .unwrap()
            .settings,
            vec![
                Setting::Flag("https_port", "15671".into()),
                Setting::Flag("https_verify_peer", "true".into()),
                Setting::Flag("mqtts_port", "8884".into()),
                Setting::Flag("stomps_port", "0".into()),
                Setting::Flag("mqtt_ssl_cert_login", "true".into()),
            ]
        );
        assert!(parse("management.ssl.verify = yes\n").is_err());
        assert_eq!(
            parse("listeners.ssl.default = 5671\nssl_options.verify = verify_peer\n")
                .unwrap()
                .settings,
            vec![
                Setting::Flag("amqps_port", "5671".into()),
                Setting::Flag("tls_verify_peer", "true".into())
            ]
        );
        assert!(parse("vm_memory_high_watermark.absolute = 2XB\n").is_err());
    }
}
