//! Warren's management HTTP API and Prometheus metrics, with RabbitMQ's paths, methods,
//! status codes and JSON field names, so that tools written for RabbitMQ's management
//! plugin (rabbitmqadmin, the `rabbitmq-http-client` crate, Terraform providers, scripts)
//! work unchanged.
//!
//! # Layout
//! - [`serve`] runs the API (RabbitMQ's port 15672) and [`serve_prometheus`] the metrics
//!   (15692); both stop when their `shutdown` receiver turns true. [`serve_listeners`]
//!   runs the API on plain HTTP, HTTPS (15671) or both, sharing one state.
//! - `tls`: the HTTPS listener, TLS handshakes done beside the accept loop.
//! - `auth`: HTTP Basic against the broker's users; tags and vhost permissions decide
//!   access as in RabbitMQ.
//! - `error`: RabbitMQ's error bodies and status codes.
//! - `listing`: `sort`, `sort_reverse`, `columns`, `page`/`page_size`/`name` for every
//!   list endpoint, rendering only the page that is returned.
//! - `rates`: a sampler that turns counters into RabbitMQ's `*_details.rate` figures.
//! - `render`: the JSON of queues, exchanges, connections, channels and the rest.
//! - `api`: one file per API resource, in RabbitMQ's vocabulary.
//! - `sys`: process and machine facts (memory, descriptors, disk) for node figures.
//! - `ui`: the web UI at `/` (files under `ui/`, embedded), a client of `/api` only.
//! - `metrics`: the Prometheus text format, RabbitMQ's metric names, aggregated on
//!   `/metrics` and per object on `/metrics/per-object`.
//! - `openapi.json` (next to this crate's `Cargo.toml`): an OpenAPI document of every
//!   path served; a unit test checks it against the router, an interop test against the
//!   running server.
//!
//! The API never touches a protocol adapter: topology goes through the core's vhost
//! operations, connections through the core's connection registry.

mod api;
mod auth;
mod error;
mod listing;
mod metrics;
mod rates;
mod render;
pub mod sys;
mod tls;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warren_core::Broker;

pub use api::ROUTES;

/// A listener the broker runs, as RabbitMQ's overview lists it and the port-listener
/// health check checks it.
#[derive(Debug, Clone)]
pub struct Listener {
    /// RabbitMQ's protocol names: "amqp", "http", "http/prometheus", "mqtt", "stomp".
    pub protocol: String,
    pub ip: String,
    pub port: u16,
}

/// What the API reports about the broker beyond the core's state.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Every listener the broker runs (for the overview and the listener checks).
    pub listeners: Vec<Listener>,
    /// The RabbitMQ release whose API this is (`rabbitmq_version`, `management_version`):
    /// tools gate features on it, so it matches what the AMQP adapter announces.
    pub rabbitmq_version: String,
    /// What the broker really is (`product_name`, `product_version`).
    pub product_name: String,
    pub product_version: String,
    /// The free disk space limit (`disk_free_limit` in nodes and metrics), bytes.
    pub disk_free_limit: u64,
    /// How often rates are sampled (RabbitMQ: `collect_statistics_interval`, 5 s).
    pub stats_interval: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listeners: Vec::new(),
            rabbitmq_version: "3.13.7".into(),
            product_name: "Warren".into(),
            product_version: env!("CARGO_PKG_VERSION").into(),
            disk_free_limit: 50_000_000,
            stats_interval: Duration::from_secs(5),
        }
    }
}

/// What every handler shares.
pub(crate) struct Ctx {
    pub broker: Arc<Broker>,
    pub cfg: HttpConfig,
    pub rates: rates::Rates,
    pub started: Instant,
}

pub(crate) type State = Arc<Ctx>;

fn context(broker: Arc<Broker>, cfg: HttpConfig) -> State {
    Arc::new(Ctx {
        broker,
        cfg,
        rates: rates::Rates::default(),
        started: Instant::now(),
    })
}

/// The API's router (exposed for tests that drive it without a socket).
fn router(state: State) -> Router {
    api::routes().merge(ui::routes()).with_state(state)
}

/// Serves the management API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: HttpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let listeners = ApiListeners {
        http: Some(listener),
        https: None,
    };
    serve_listeners(listeners, broker, cfg, shutdown).await
}

/// The sockets the management API answers on.
#[derive(Default)]
pub struct ApiListeners {
    /// Plain HTTP (RabbitMQ's `management.tcp.port`, 15672).
    pub http: Option<TcpListener>,
    /// HTTPS, with its TLS settings (`management.ssl.port`, 15671).
    pub https: Option<(TcpListener, Arc<warren_tls::ServerConfig>)>,
}

/// Serves the management API on every listener given until `shutdown` turns true. Both
/// share one state: the same rate samples, whichever scheme a client uses.
pub async fn serve_listeners(
    listeners: ApiListeners,
    broker: Arc<Broker>,
    cfg: HttpConfig,
    shutdown: watch::Receiver<bool>,
) {
    // The management state (topic permissions among it) is loaded before any request.
    broker.management();
    let state = context(broker, cfg);
    let sampler = tokio::spawn(rates::run(state.clone(), shutdown.clone()));
    let app = router(state);
    let plain = async {
        let Some(l) = listeners.http else { return };
        let svc = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(l, svc)
            .with_graceful_shutdown(stopped(shutdown.clone()))
            .await
        {
            tracing::error!(error = %e, "management HTTP listener failed");
        }
    };
    let secure = async {
        let Some((l, tls)) = listeners.https else {
            return;
        };
        let svc = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(tls::TlsListener::start(l, tls), svc)
            .with_graceful_shutdown(stopped(shutdown.clone()))
            .await
        {
            tracing::error!(error = %e, "management HTTPS listener failed");
        }
    };
    tokio::join!(plain, secure);
    sampler.abort();
}

/// Resolves once `shutdown` is true.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// Serves Prometheus metrics (`/metrics`, `/metrics/per-object`) until `shutdown`.
pub async fn serve_prometheus(
    listener: TcpListener,
    broker: Arc<Broker>,
    cfg: HttpConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = context(broker, cfg);
    let app = metrics::routes().with_state(state);
    let stop = async move {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "Prometheus listener failed");
    }
}
