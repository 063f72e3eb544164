//! The `warren` broker binary: command line, logging, listeners, resource monitors and
//! graceful shutdown. Everything else lives in the library crates.

mod config;
mod disk;
mod memory;
mod size;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::net::TcpListener;
use tokio::sync::watch;
use warren_core::{Broker, BrokerConfig};

/// A RabbitMQ-compatible message broker. A port of 0 disables that listener.
#[derive(Parser, Debug)]
#[command(name = "warren", version, about, args_override_self = true)]
struct Args {
    /// Address every listener binds to.
    #[arg(long, env = "WARREN_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// AMQP 0-9-1 port.
    #[arg(long, env = "WARREN_AMQP_PORT", default_value_t = 5672)]
    amqp_port: u16,
    /// AMQP 0-9-1 over TLS (AMQPS) port (`listeners.ssl.default`) [default: 5671];
    /// listens only when --tls-cert and --tls-key are given.
    #[arg(long, env = "WARREN_AMQPS_PORT")]
    amqps_port: Option<u16>,
    /// Server certificate chain, PEM (RabbitMQ's `ssl_options.certfile`).
    #[arg(long, env = "WARREN_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Server private key, PEM (`ssl_options.keyfile`).
    #[arg(long, env = "WARREN_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA certificates client certificates are verified against, PEM
    /// (`ssl_options.cacertfile`).
    #[arg(long, env = "WARREN_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Ask clients for a certificate and verify it (`ssl_options.verify = verify_peer`);
    /// a verified certificate's common name can log in with SASL EXTERNAL.
    #[arg(long, env = "WARREN_TLS_VERIFY_PEER", action = clap::ArgAction::Set, default_value_t = false)]
    tls_verify_peer: bool,
    /// With --tls-verify-peer, refuse clients without a certificate
    /// (`ssl_options.fail_if_no_peer_cert`).
    #[arg(long, env = "WARREN_TLS_FAIL_IF_NO_PEER_CERT", action = clap::ArgAction::Set, default_value_t = false)]
    tls_fail_if_no_peer_cert: bool,
    /// Management HTTP API and web UI port.
    #[arg(long, env = "WARREN_HTTP_PORT", default_value_t = 15672)]
    http_port: u16,
    /// Management API and web UI over HTTPS port (`management.ssl.port`) [default:
    /// 15671]; listens only when a certificate is configured (--https-cert, or else
    /// --tls-cert).
    #[arg(long, env = "WARREN_HTTPS_PORT")]
    https_port: Option<u16>,
    /// The HTTPS listener's certificate chain, PEM (`management.ssl.certfile`); without
    /// it HTTPS uses --tls-cert, --tls-key and --tls-ca.
    #[arg(long, env = "WARREN_HTTPS_CERT")]
    https_cert: Option<PathBuf>,
    /// The HTTPS listener's private key, PEM (`management.ssl.keyfile`).
    #[arg(long, env = "WARREN_HTTPS_KEY")]
    https_key: Option<PathBuf>,
    /// CA certificates HTTPS client certificates are verified against, PEM
    /// (`management.ssl.cacertfile`; default: --tls-ca).
    #[arg(long, env = "WARREN_HTTPS_CA")]
    https_ca: Option<PathBuf>,
    /// Ask HTTPS clients for a certificate and verify it (`management.ssl.verify =
    /// verify_peer`). Independent of --tls-verify-peer, as in RabbitMQ: browsers rarely
    /// hold client certificates.
    #[arg(long, env = "WARREN_HTTPS_VERIFY_PEER", action = clap::ArgAction::Set, default_value_t = false)]
    https_verify_peer: bool,
    /// With --https-verify-peer, refuse HTTPS clients without a certificate
    /// (`management.ssl.fail_if_no_peer_cert`).
    #[arg(long, env = "WARREN_HTTPS_FAIL_IF_NO_PEER_CERT", action = clap::ArgAction::Set, default_value_t = false)]
    https_fail_if_no_peer_cert: bool,
    /// MQTT port.
    #[arg(long, env = "WARREN_MQTT_PORT", default_value_t = 1883)]
    mqtt_port: u16,
    /// MQTT over TLS (MQTTS) port (`mqtt.listeners.ssl.default`) [default: 8883];
    /// listens only when --tls-cert and --tls-key are given, with their settings.
    #[arg(long, env = "WARREN_MQTTS_PORT")]
    mqtts_port: Option<u16>,
    /// An MQTT client over TLS that sends no username and password logs in as the user
    /// named by its verified certificate's common name, without a password
    /// (`mqtt.ssl_cert_login`).
    #[arg(long, env = "WARREN_MQTT_SSL_CERT_LOGIN", action = clap::ArgAction::Set, default_value_t = false)]
    mqtt_ssl_cert_login: bool,
    /// STOMP port.
    #[arg(long, env = "WARREN_STOMP_PORT", default_value_t = 61613)]
    stomp_port: u16,
    /// STOMP over TLS port (`stomp.listeners.ssl.default`) [default: 61614]; listens
    /// only when --tls-cert and --tls-key are given, with their settings.
    #[arg(long, env = "WARREN_STOMPS_PORT")]
    stomps_port: Option<u16>,
    /// A STOMP CONNECT over TLS without a `login` header logs in as the user named by
    /// the verified client certificate's common name, without a passcode
    /// (`stomp.ssl_cert_login`).
    #[arg(long, env = "WARREN_STOMP_SSL_CERT_LOGIN", action = clap::ArgAction::Set, default_value_t = false)]
    stomp_ssl_cert_login: bool,
    /// MQTT over WebSocket (Web-MQTT, `ws://host:port/ws`) port.
    #[arg(long, env = "WARREN_WEB_MQTT_PORT", default_value_t = 15675)]
    web_mqtt_port: u16,
    /// STOMP over WebSocket (Web-STOMP, `ws://host:port/ws`) port.
    #[arg(long, env = "WARREN_WEB_STOMP_PORT", default_value_t = 15674)]
    web_stomp_port: u16,
    /// The exchange MQTT publishes go to and MQTT subscriptions bind to (RabbitMQ's
    /// `mqtt.exchange`); it must be a topic exchange in each vhost MQTT clients use.
    #[arg(long, env = "WARREN_MQTT_EXCHANGE", default_value = "amq.topic")]
    mqtt_exchange: String,
    /// Largest MQTT packet accepted after CONNECT, announced to MQTT 5 clients (RabbitMQ's
    /// `mqtt.max_packet_size_authenticated`); a larger one closes the connection.
    #[arg(long, env = "WARREN_MQTT_MAX_PACKET_SIZE", default_value = "268435455", value_parser = parse_mqtt_packet_size)]
    mqtt_max_packet_size: u32,
    /// Prometheus metrics port.
    #[arg(long, env = "WARREN_PROMETHEUS_PORT", default_value_t = 15692)]
    prometheus_port: u16,
    /// Where durable data lives.
    #[arg(long, env = "WARREN_DATA_DIR", default_value = "./warren-data")]
    data_dir: PathBuf,
    /// Free disk space under --data-dir below which publishers are blocked, in
    /// RabbitMQ's notation (50MB, 1GB, 2GiB, or bytes).
    #[arg(long, env = "WARREN_DISK_FREE_LIMIT", default_value = "50MB", value_parser = size::parse_size)]
    disk_free_limit: u64,
    /// Memory high watermark as a fraction of the machine's (or cgroup's) memory:
    /// above it, publishers are blocked until memory falls (RabbitMQ's
    /// `vm_memory_high_watermark.relative`).
    #[arg(long, env = "WARREN_VM_MEMORY_HIGH_WATERMARK", default_value_t = 0.4, value_parser = parse_fraction)]
    vm_memory_high_watermark: f64,
    /// The memory high watermark as an amount (`1GB`, `512MiB`, bytes); overrides the
    /// fraction (RabbitMQ's `vm_memory_high_watermark.absolute`).
    #[arg(long, env = "WARREN_VM_MEMORY_HIGH_WATERMARK_ABSOLUTE", value_parser = size::parse_size)]
    vm_memory_high_watermark_absolute: Option<u64>,
    /// Size of each queue segment file (messages are appended to these).
    #[arg(long, env = "WARREN_SEGMENT_SIZE", default_value = "8MiB", value_parser = parse_segment_size)]
    segment_size: u32,
    /// Reply to declarations and bindings of durable objects only after they are on disk
    /// (by default they reach the disk with the next commit round, before any confirm
    /// that depends on them).
    #[arg(long, env = "WARREN_SYNC_TOPOLOGY")]
    sync_topology: bool,
    /// Node name shown to clients and in the management API.
    #[arg(long, env = "WARREN_NODE_NAME")]
    node_name: Option<String>,
    /// How often the management API samples message rates, in seconds (RabbitMQ's
    /// `collect_statistics_interval`).
    #[arg(long, env = "WARREN_STATS_INTERVAL", default_value_t = 5.0)]
    stats_interval: f64,
    /// How long (ms) a delivery may stay unacknowledged before its channel is closed
    /// with PRECONDITION_FAILED, as RabbitMQ's `consumer_timeout`; 0 disables it. Queues
    /// may set their own (`x-consumer-timeout`, or a `consumer-timeout` policy).
    #[arg(long, env = "WARREN_CONSUMER_TIMEOUT", default_value_t = 1_800_000)]
    consumer_timeout: u64,
    /// A configuration file in RabbitMQ's `rabbitmq.conf` syntax; flags and `WARREN_*`
    /// variables given explicitly override it.
    #[arg(long, env = "WARREN_CONFIG")]
    config: Option<PathBuf>,
    /// Heartbeat interval (s) the server proposes in `connection.tune`; 0 disables.
    #[arg(long, env = "WARREN_HEARTBEAT", default_value_t = 60)]
    heartbeat: u16,
    /// Largest frame (bytes) the server accepts, proposed in `connection.tune`.
    #[arg(long, env = "WARREN_FRAME_MAX", default_value_t = 131072, value_parser = clap::value_parser!(u32).range(4096..))]
    frame_max: u32,
    /// Most channels per connection, proposed in `connection.tune`.
    #[arg(long, env = "WARREN_CHANNEL_MAX", default_value_t = 2047)]
    channel_max: u16,
    /// Largest message body (bytes) accepted; larger ones close the channel with 406
    /// (RabbitMQ 4's default: 16 MiB).
    #[arg(long, env = "WARREN_MAX_MESSAGE_SIZE", default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1..=(512 << 20)))]
    max_message_size: u64,
    /// How long (ms) a client may take from TCP connect to `connection.open`.
    #[arg(long, env = "WARREN_HANDSHAKE_TIMEOUT", default_value_t = 10_000)]
    handshake_timeout: u64,
    /// A definitions file (RabbitMQ's JSON export format) to import at start, as
    /// RabbitMQ's `load_definitions`: users, vhosts, permissions, policies, exchanges,
    /// queues and bindings it names are created or updated.
    #[arg(long, env = "WARREN_LOAD_DEFINITIONS")]
    load_definitions: Option<PathBuf>,
}

/// Settings the configuration file makes that have no flag of their own.
#[derive(Default)]
struct FileOnly {
    default_user: Option<String>,
    default_pass: Option<String>,
    default_vhost: Option<String>,
    loopback_users: Option<Vec<String>>,
    log_level: Option<String>,
}

/// Reads `--config` and applies it under the flags: a setting from the file is used
/// only where the flag was not given on the command line or in the environment.
fn apply_config(
    args: &mut Args,
    matches: &clap::ArgMatches,
) -> Result<(FileOnly, Vec<String>), String> {
    let mut extra = FileOnly::default();
    let Some(path) = args.config.clone() else {
        return Ok((extra, vec![]));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    let parsed =
        config::parse(&text).map_err(|e| format!("configuration file {}: {e}", path.display()))?;
    let explicit = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    // Re-parse with the file's settings as flags placed before the real command line
    // (a later flag overrides an earlier one), so clap checks the file's values too.
    // Settings a WARREN_* variable gives are left out: in argv they would beat it.
    let mut argv: Vec<std::ffi::OsString> = vec!["warren".into()];
    let mut loopback: Vec<String> = vec!["guest".into()];
    for s in &parsed.settings {
        match s {
            config::Setting::Flag(id, v) if !explicit(id) => {
                argv.push(format!("--{}", id.replace('_', "-")).into());
                argv.push(v.into());
            }
            config::Setting::Flag(..) => {}
            config::Setting::Bind(ip) if !explicit("bind") => {
                argv.push("--bind".into());
                argv.push(ip.to_string().into());
            }
            config::Setting::Bind(_) => {}
            config::Setting::DefaultUser(u) => extra.default_user = Some(u.clone()),
            config::Setting::DefaultPass(p) => extra.default_pass = Some(p.clone()),
            config::Setting::DefaultVhost(v) => extra.default_vhost = Some(v.clone()),
            config::Setting::LoopbackUser(u, on) => {
                loopback.retain(|x| x != u);
                if *on {
                    loopback.push(u.clone());
                }
                extra.loopback_users = Some(loopback.clone());
            }
            config::Setting::NoLoopbackUsers => {
                loopback.clear();
                extra.loopback_users = Some(vec![]);
            }
            config::Setting::DiskFreeRelative(f) if !explicit("disk_free_limit") => {
                let bytes = (f * warren_http::sys::total_memory() as f64) as u64;
                argv.push("--disk-free-limit".into());
                argv.push(bytes.to_string().into());
            }
            config::Setting::DiskFreeRelative(_) => {}
            config::Setting::LogLevel(l) => extra.log_level = Some(l.clone()),
        }
    }
    argv.extend(std::env::args_os().skip(1));
    let from_file = Args::command().try_get_matches_from(&argv).map_err(|e| {
        // Name the key and line: find the setting clap refused by checking each alone.
        let culprit = parsed
            .settings
            .iter()
            .zip(&parsed.origins)
            .find_map(|(s, (line, key))| match s {
                config::Setting::Flag(id, v) => {
                    let flag = format!("--{}", id.replace('_', "-"));
                    let one = ["warren", flag.as_str(), v.as_str()];
                    let err = Args::command().try_get_matches_from(one).err()?;
                    let text = err.render().to_string();
                    let why = text.lines().next().unwrap_or("invalid value");
                    Some(format!("line {line}: invalid value for '{key}': {why}"))
                }
                _ => None,
            });
        format!(
            "configuration file {}: {}",
            path.display(),
            culprit.unwrap_or_else(|| e.render().to_string().lines().next().unwrap_or("").into())
        )
    })?;
    let merged = Args::from_arg_matches(&from_file).map_err(|e| e.to_string())?;
    *args = merged;
    Ok((extra, parsed.warnings))
}

fn main() {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (extra, warnings) = match apply_config(&mut args, &matches) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("warren: {e}");
            std::process::exit(1);
        }
    };
    use std::io::IsTerminal;
    let level = match extra.log_level.as_deref() {
        Some("warning") => "warn",
        Some("critical") => "error",
        Some("none") => "off",
        Some(l) => l,
        None => "info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .init();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(path) = &args.config {
        tracing::info!(file = %path.display(), "configuration file read");
    }
    let args = (args, extra);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warren")
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn parse_segment_size(s: &str) -> Result<u32, String> {
    let n = size::parse_size(s)?;
    if !(4096..=1 << 30).contains(&n) {
        return Err(format!("segment size {n} must be between 4KiB and 1GiB"));
    }
    Ok(n as u32)
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!(
            "invalid memory high watermark '{s}': expected a fraction of total memory such as 0.4 (or use --vm-memory-high-watermark-absolute)"
        )),
    }
}

fn parse_mqtt_packet_size(s: &str) -> Result<u32, String> {
    let n = size::parse_size(s)?;
    // MQTT's Remaining Length tops out at 268,435,455 (four length bytes).
    if !(128..=268_435_455).contains(&n) {
        return Err(format!(
            "MQTT packet size {n} must be between 128 and 268435455"
        ));
    }
    Ok(n as u32)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The TLS settings of one set of flags (`--tls-*` or `--https-*`): none without a
/// certificate; an error, naming the flags or prefixed with `what` ("TLS", "HTTPS"),
/// for half a pair or unusable files.
fn tls_config(
    (cert, key, ca): (&Option<PathBuf>, &Option<PathBuf>, &Option<PathBuf>),
    verify_peer: bool,
    fail_if_no_peer_cert: bool,
    flags: &str,
    what: &str,
) -> Result<Option<std::sync::Arc<warren_tls::ServerConfig>>, String> {
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => return Ok(None),
        _ => return Err(format!("TLS needs both {flags}-cert and {flags}-key")),
    };
    warren_tls::server_config(&warren_tls::TlsOptions {
        certfile: cert,
        keyfile: key,
        cacertfile: ca.clone(),
        verify_peer,
        fail_if_no_peer_cert,
    })
    .map(Some)
    .map_err(|e| format!("{what}: {e}"))
}

const TLS_CERT: &str = "--tls-cert and --tls-key";

/// The port a TLS listener uses: RabbitMQ's by default when there is a certificate, and
/// none without one; a port asked for without a certificate is refused rather than
/// silently left closed.
fn tls_port(
    given: Option<u16>,
    default: u16,
    have_cert: bool,
    flag: &str,
    cert_flags: &str,
) -> Result<u16, String> {
    match given {
        Some(0) => Ok(0),
        Some(p) if have_cert => Ok(p),
        Some(_) => Err(format!("{flag} needs a certificate: give {cert_flags}")),
        None if have_cert => Ok(default),
        None => Ok(0),
    }
}

async fn bind(addr: IpAddr, port: u16, what: &str) -> Result<Option<TcpListener>, String> {
    if port == 0 {
        return Ok(None);
    }
    let sa = SocketAddr::new(addr, port);
    let l = TcpListener::bind(sa)
        .await
        .map_err(|e| format!("cannot listen for {what} on {sa}: {e}"))?;
    tracing::info!("{what} listening on {sa}");
    Ok(Some(l))
}

/// Raises the soft open-files limit to the hard one: every connection, queue segment and
/// delayed-message bucket holds descriptors, and a distribution's default soft limit
/// (often 1024) is far below what a broker needs (RabbitMQ's packaging raises it too).
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            let wanted = r.rlim_max;
            r.rlim_cur = wanted;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                tracing::warn!("cannot raise the open-files limit to {wanted}");
            }
        }
    }
}

async fn run((args, extra): (Args, FileOnly)) -> Result<(), String> {
    raise_fd_limit();
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(|| format!("warren@{}", hostname()));
    let defaults = BrokerConfig::default();
    let broker = Broker::open(BrokerConfig {
        node_name: node_name.clone(),
        data_dir: args.data_dir.clone(),
        segment_size: args.segment_size,
        sync_topology: args.sync_topology,
        default_user: extra.default_user.unwrap_or(defaults.default_user),
        default_pass: extra.default_pass.unwrap_or(defaults.default_pass),
        default_vhost: extra.default_vhost.unwrap_or(defaults.default_vhost),
        loopback_users: extra.loopback_users.unwrap_or(defaults.loopback_users),
    })?;
    // Management state (topic permissions among it) loaded before the first connection.
    broker.management();
    if let Some(path) = &args.load_definitions {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read definitions {}: {e}", path.display()))?;
        let defs: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("definitions {} are not JSON: {e}", path.display()))?;
        broker
            .import_definitions(&defs, None)
            .map_err(|e| format!("cannot import definitions {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "definitions imported");
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let amqp = bind(args.bind, args.amqp_port, "AMQP 0-9-1").await?;
    let tls = tls_config(
        (&args.tls_cert, &args.tls_key, &args.tls_ca),
        args.tls_verify_peer,
        args.tls_fail_if_no_peer_cert,
        "--tls",
        "TLS",
    )?;
    // HTTPS has its own certificate settings (`management.ssl.*`), the broker's by
    // default; client-certificate verification only its own, as in RabbitMQ.
    let own = args.https_cert.is_some() || args.https_key.is_some();
    let (cert, key, flags) = if own {
        (&args.https_cert, &args.https_key, "--https")
    } else {
        (&args.tls_cert, &args.tls_key, "--tls")
    };
    let https_tls = tls_config(
        (
            cert,
            key,
            &args.https_ca.clone().or_else(|| args.tls_ca.clone()),
        ),
        args.https_verify_peer,
        args.https_fail_if_no_peer_cert,
        flags,
        "HTTPS",
    )?;
    let amqps_port = tls_port(
        args.amqps_port,
        5671,
        tls.is_some(),
        "--amqps-port",
        TLS_CERT,
    )?;
    let mqtts_port = tls_port(
        args.mqtts_port,
        8883,
        tls.is_some(),
        "--mqtts-port",
        TLS_CERT,
    )?;
    let stomps_port = tls_port(
        args.stomps_port,
        61614,
        tls.is_some(),
        "--stomps-port",
        TLS_CERT,
    )?;
    let https_port = tls_port(
        args.https_port,
        15671,
        https_tls.is_some(),
        "--https-port",
        "--https-cert and --https-key (or --tls-cert and --tls-key)",
    )?;
    let amqps = bind(args.bind, amqps_port, "AMQP 0-9-1 over TLS").await?;
    let http = bind(args.bind, args.http_port, "management HTTP").await?;
    let https = bind(args.bind, https_port, "management HTTPS").await?;
    let prom = bind(args.bind, args.prometheus_port, "Prometheus").await?;
    let mqtt = bind(args.bind, args.mqtt_port, "MQTT").await?;
    let mqtts = bind(args.bind, mqtts_port, "MQTT over TLS").await?;
    let web_mqtt = bind(args.bind, args.web_mqtt_port, "Web-MQTT").await?;
    let stomp = bind(args.bind, args.stomp_port, "STOMP").await?;
    let stomps = bind(args.bind, stomps_port, "STOMP over TLS").await?;
    let web_stomp = bind(args.bind, args.web_stomp_port, "Web-STOMP").await?;

    let scheduler = tokio::spawn(broker.scheduler.clone().run());
    let total_mem = warren_http::sys::total_memory();
    let mem_limit = memory::watermark(
        args.vm_memory_high_watermark,
        args.vm_memory_high_watermark_absolute,
        total_mem,
    );
    tracing::info!(
        "memory high watermark set to {} MiB ({mem_limit} bytes) of {} MiB ({total_mem} bytes) total",
        mem_limit >> 20,
        total_mem >> 20
    );
    let mem = tokio::spawn(memory::monitor(
        broker.clone(),
        mem_limit,
        shutdown_rx.clone(),
    ));
    let disk = tokio::spawn(disk::monitor(
        broker.clone(),
        args.data_dir.clone(),
        args.disk_free_limit,
        shutdown_rx.clone(),
    ));

    let mut tasks = Vec::new();
    let amqp_cfg = warren_amqp::AmqpConfig {
        cluster_name: node_name.clone(),
        heartbeat: args.heartbeat,
        frame_max: args.frame_max,
        channel_max: args.channel_max,
        max_message_size: args.max_message_size,
        handshake_timeout: Duration::from_millis(args.handshake_timeout.max(1)),
        consumer_timeout: (args.consumer_timeout > 0)
            .then(|| Duration::from_millis(args.consumer_timeout)),
        ..Default::default()
    };
    let ip = args.bind.to_string();
    // RabbitMQ's protocol names for /api/overview and the port-listener health check.
    let listeners = [
        ("amqp", args.amqp_port),
        ("amqp/ssl", amqps_port),
        ("http", args.http_port),
        ("https", https_port),
        ("http/prometheus", args.prometheus_port),
        ("mqtt", args.mqtt_port),
        ("mqtt/ssl", mqtts_port),
        ("stomp", args.stomp_port),
        ("stomp/ssl", stomps_port),
        ("http/web-mqtt", args.web_mqtt_port),
        ("http/web-stomp", args.web_stomp_port),
    ]
    .into_iter()
    .filter(|(_, p)| *p != 0)
    .map(|(protocol, port)| warren_http::Listener {
        protocol: protocol.into(),
        ip: ip.clone(),
        port,
    })
    .collect();
    let http_cfg = warren_http::HttpConfig {
        listeners,
        disk_free_limit: args.disk_free_limit,
        stats_interval: Duration::from_secs_f64(args.stats_interval.max(0.1)),
        rabbitmq_version: amqp_cfg.version.clone(),
        ..Default::default()
    };
    if http.is_some() || https.is_some() {
        let listeners = warren_http::ApiListeners {
            http,
            https: https.zip(https_tls),
        };
        tasks.push(tokio::spawn(warren_http::serve_listeners(
            listeners,
            broker.clone(),
            http_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(l) = prom {
        tasks.push(tokio::spawn(warren_http::serve_prometheus(
            l,
            broker.clone(),
            http_cfg,
            shutdown_rx.clone(),
        )));
    }
    let mqtt_cfg = warren_mqtt::MqttConfig {
        exchange: args.mqtt_exchange.clone(),
        max_packet_size: args.mqtt_max_packet_size,
        ssl_cert_login: args.mqtt_ssl_cert_login,
        ..Default::default()
    };
    if let Some(l) = mqtt {
        tasks.push(tokio::spawn(warren_mqtt::serve(
            l,
            broker.clone(),
            mqtt_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let (Some(l), Some(tls)) = (mqtts, &tls) {
        tasks.push(tokio::spawn(warren_mqtt::serve_tls(
            l,
            tls.clone(),
            broker.clone(),
            mqtt_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(l) = web_mqtt {
        tasks.push(tokio::spawn(warren_mqtt::serve_ws(
            l,
            broker.clone(),
            mqtt_cfg,
            shutdown_rx.clone(),
        )));
    }
    let stomp_cfg = warren_stomp::StompConfig {
        ssl_cert_login: args.stomp_ssl_cert_login,
        ..Default::default()
    };
    if let (Some(l), Some(tls)) = (stomps, &tls) {
        tasks.push(tokio::spawn(warren_stomp::serve_tls(
            l,
            tls.clone(),
            broker.clone(),
            stomp_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(l) = stomp {
        tasks.push(tokio::spawn(warren_stomp::serve(
            l,
            broker.clone(),
            stomp_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(l) = web_stomp {
        tasks.push(tokio::spawn(warren_stomp::serve_ws(
            l,
            broker.clone(),
            stomp_cfg,
            shutdown_rx.clone(),
        )));
    }
    if let (Some(l), Some(tls)) = (amqps, tls) {
        tasks.push(tokio::spawn(warren_amqp::serve_tls(
            l,
            tls,
            broker.clone(),
            amqp_cfg.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(l) = amqp {
        let cfg = amqp_cfg;
        tasks.push(tokio::spawn(warren_amqp::serve(
            l,
            broker.clone(),
            cfg,
            shutdown_rx.clone(),
        )));
    }
    tracing::info!(node = %node_name, data_dir = %args.data_dir.display(), "warren started");

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .is_err()
    {
        tracing::warn!("connections did not close within 10s; exiting anyway");
    }
    disk.abort();
    mem.abort();
    scheduler.abort();
    // Ack logs written, pending fsyncs done, definitions snapshotted.
    tokio::task::spawn_blocking(move || broker.shutdown())
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
