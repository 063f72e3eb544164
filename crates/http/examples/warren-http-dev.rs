//! A broker with the management API and Prometheus listeners, for the HTTP API's tests
//! until the `warren` binary starts them itself (then the tests run `warren` with
//! `--http-port` instead: set `WARREN_HTTP_BIN`).
//!
//! `warren-http-dev --amqp-port P --http-port H --prometheus-port M --data-dir D`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warren_core::{Broker, BrokerConfig};
use warren_http::{HttpConfig, Listener};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    #[arg(long, default_value_t = 5672)]
    amqp_port: u16,
    #[arg(long, default_value_t = 15672)]
    http_port: u16,
    #[arg(long, default_value_t = 15692)]
    prometheus_port: u16,
    #[arg(long, default_value = "./warren-data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "warren@localhost")]
    node_name: String,
    /// Accepted for a command line identical to `warren`'s; this broker has no MQTT.
    #[arg(long, default_value_t = 0)]
    mqtt_port: u16,
    /// Accepted for a command line identical to `warren`'s; this broker has no STOMP.
    #[arg(long, default_value_t = 0)]
    stomp_port: u16,
    /// Seconds between rate samples (RabbitMQ's default is 5).
    #[arg(long, env = "WARREN_STATS_INTERVAL", default_value_t = 5.0)]
    stats_interval: f64,
}

async fn listen(bind: &str, port: u16) -> TcpListener {
    let addr: SocketAddr = format!("{bind}:{port}").parse().expect("address");
    TcpListener::bind(addr).await.expect("bind")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let broker = Broker::open(BrokerConfig {
        node_name: args.node_name.clone(),
        data_dir: args.data_dir.clone(),
        ..Default::default()
    })
    .expect("broker");
    let (tx, rx) = watch::channel(false);
    let amqp = listen(&args.bind, args.amqp_port).await;
    let http = listen(&args.bind, args.http_port).await;
    let prom = listen(&args.bind, args.prometheus_port).await;
    let listeners = vec![
        Listener {
            protocol: "amqp".into(),
            ip: args.bind.clone(),
            port: args.amqp_port,
        },
        Listener {
            protocol: "http".into(),
            ip: args.bind.clone(),
            port: args.http_port,
        },
        Listener {
            protocol: "http/prometheus".into(),
            ip: args.bind.clone(),
            port: args.prometheus_port,
        },
    ];
    let cfg = HttpConfig {
        listeners,
        stats_interval: Duration::from_secs_f64(args.stats_interval),
        ..Default::default()
    };
    let scheduler = tokio::spawn(broker.scheduler.clone().run());
    let amqp_cfg = warren_amqp::AmqpConfig {
        cluster_name: args.node_name.clone(),
        ..Default::default()
    };
    let tasks = vec![
        tokio::spawn(warren_amqp::serve(
            amqp,
            broker.clone(),
            amqp_cfg,
            rx.clone(),
        )),
        tokio::spawn(warren_http::serve(
            http,
            broker.clone(),
            cfg.clone(),
            rx.clone(),
        )),
        tokio::spawn(warren_http::serve_prometheus(
            prom,
            broker.clone(),
            cfg,
            rx.clone(),
        )),
    ];
    tracing::info!("warren-http-dev started");
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    scheduler.abort();
    let _ = tokio::task::spawn_blocking(move || broker.shutdown()).await;
}
