//! Harness shared by the lapin interop tests.
//!
//! Target selection:
//! - `REFERENCE_AMQP_URL` set (e.g. `amqp://guest:guest@127.0.0.1:5673/%2f`): every test
//!   talks to that broker (the reference RabbitMQ);
//! - otherwise each test binary starts ONE Warren (`WARREN_BIN`, default
//!   `<repo>/target/release/warren`) on a free loopback port with a fresh data directory.
//!   It is started through a small `sh` wrapper that holds the read end of a pipe whose write
//!   end only this process holds: when the test binary exits for any reason (success, panic,
//!   abort, signal) the pipe closes, the wrapper sends SIGTERM to Warren, waits for it and
//!   removes the data directory. Set `WARREN_LOG=<file>` to keep Warren's stderr.
//!
//! Tests in one binary run in parallel against the same broker, so every test uses
//! unique queue/exchange names (`uniq`). Every await on the broker goes through `w!`, which
//! fails the test after `TIMEOUT` instead of hanging.
#![allow(dead_code)]

use futures::channel::oneshot;
use lapin::{
    options::{BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable,
    uri::AMQPUri,
    BasicProperties, Channel, Connection, ConnectionProperties,
};
use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, OnceLock,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub use futures::StreamExt;

/// Upper bound for any single wait on the broker.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Await `$fut`, failing the test (with the source location) if it takes longer than
/// `TIMEOUT` (or the given duration).
#[macro_export]
macro_rules! w {
    ($fut:expr) => {
        $crate::w!($fut, $crate::common::TIMEOUT)
    };
    ($fut:expr, $dur:expr) => {
        match ::tokio::time::timeout($dur, $fut).await {
            Ok(v) => v,
            Err(_) => panic!(
                "timed out after {:?} at {}:{} awaiting `{}`",
                $dur,
                file!(),
                line!(),
                stringify!($fut)
            ),
        }
    };
}

struct Broker {
    url: String,
    reference: bool,
    // Kept for the life of the process: its stdin pipe is the wrapper's life line.
    _wrapper: Option<Mutex<Child>>,
}

static BROKER: OnceLock<Broker> = OnceLock::new();

fn broker() -> &'static Broker {
    BROKER.get_or_init(|| match std::env::var("REFERENCE_AMQP_URL") {
        Ok(url) if !url.is_empty() => Broker {
            url,
            reference: true,
            _wrapper: None,
        },
        _ => start_warren(),
    })
}

/// The AMQP URL of the broker under test.
pub fn url() -> String {
    broker().url.clone()
}

/// True when running against the reference RabbitMQ.
pub fn is_reference() -> bool {
    broker().reference
}

/// The broker URL, parsed (to derive URLs with another password or vhost).
pub fn uri() -> AMQPUri {
    url().parse().expect("broker URL does not parse")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

const WRAPPER: &str = r#"
exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
( read _ <&3; kill -TERM "$pid" 2>/dev/null ) &
wait "$pid"
rc=$?
rm -rf "$WARREN_LAPIN_DATA_DIR"
exit $rc
"#;

fn start_warren() -> Broker {
    let bin = std::env::var("WARREN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/warren")
        });
    assert!(
        bin.exists(),
        "Warren binary {} not found: run `cargo build --release -p warren` in the repo root, \
         set WARREN_BIN, or set REFERENCE_AMQP_URL",
        bin.display()
    );
    let mut last_err = String::new();
    for attempt in 0..5 {
        let port = free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let data_dir = std::env::temp_dir().join(format!(
            "warren-lapin-{}-{}-{}",
            std::process::id(),
            nanos,
            attempt
        ));
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let stderr = match std::env::var("WARREN_LOG") {
            Ok(path) if !path.is_empty() => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open WARREN_LOG"),
            ),
            _ => Stdio::null(),
        };
        let port_s = port.to_string();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg(&bin)
            .args(["--bind", "127.0.0.1", "--amqp-port", &port_s])
            .args(["--http-port", "0", "--mqtt-port", "0", "--stomp-port", "0"])
            .args([
                "--prometheus-port",
                "0",
                "--web-mqtt-port",
                "0",
                "--web-stomp-port",
                "0",
                "--data-dir",
            ])
            .arg(&data_dir)
            .env("WARREN_LAPIN_DATA_DIR", &data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sh wrapper for warren");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Broker {
                    url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
                    reference: false,
                    _wrapper: Some(Mutex::new(child)),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_err = format!("warren exited early ({status}) on port {port}");
                break;
            }
            if Instant::now() > deadline {
                // Closing stdin makes the wrapper stop Warren and clean up.
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(b"\n");
                }
                let _ = child.wait();
                panic!("warren did not listen on 127.0.0.1:{port} within 20s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("could not start warren: {last_err}");
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this run or an earlier one) uses.
pub fn uniq(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "lapin-{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn try_connect_uri(uri: AMQPUri) -> lapin::Result<Connection> {
    w!(Connection::connect_uri(
        uri,
        ConnectionProperties::default()
    ))
}

pub async fn connect() -> Connection {
    try_connect_uri(uri()).await.expect("connect to broker")
}

pub async fn channel(conn: &Connection) -> Channel {
    w!(conn.create_channel()).expect("open channel")
}

/// A connection and one channel on it.
pub async fn conn_ch() -> (Connection, Channel) {
    let conn = connect().await;
    let ch = channel(&conn).await;
    (conn, ch)
}

pub async fn close(conn: Connection) {
    w!(conn.close(200, "OK")).expect("close connection");
}

/// (reply code, reply text) of a broker-sent channel or connection close.
pub fn code_text(err: &lapin::Error) -> (u16, String) {
    match err {
        lapin::Error::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
        other => panic!("expected a protocol error from the broker, got {other:?}"),
    }
}

/// Assert `res` failed with exactly this reply code and text.
#[track_caller]
pub fn assert_amqp_err<T: std::fmt::Debug>(res: lapin::Result<T>, code: u16, text: &str) {
    match res {
        Ok(v) => panic!("expected broker error {code} {text:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(code_text(&e), (code, text.to_string()), "full error: {e:?}"),
    }
}

/// The error the broker closes `ch` with, for errors caused by methods without a reply
/// (basic.publish, basic.ack ...). Install it before triggering the error.
pub fn channel_error(ch: &Channel) -> oneshot::Receiver<lapin::Error> {
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    ch.on_error(move |e| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(e);
        }
    });
    rx
}

/// The error the broker closes `conn` with. Install it before triggering the error.
pub fn connection_error(conn: &Connection) -> oneshot::Receiver<lapin::Error> {
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    conn.on_error(move |e| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(e);
        }
    });
    rx
}

pub fn not_found_queue(name: &str) -> String {
    format!("NOT_FOUND - no queue '{name}' in vhost '/'")
}

pub fn not_found_exchange(name: &str) -> String {
    format!("NOT_FOUND - no exchange '{name}' in vhost '/'")
}

/// Declare a server-named, exclusive queue; returns its name.
pub async fn temp_queue(ch: &Channel) -> String {
    let q = w!(ch.queue_declare(
        "",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("declare server-named queue");
    q.name().to_string()
}

/// Declare a named, exclusive queue.
pub async fn named_queue(ch: &Channel, name: &str) {
    w!(ch.queue_declare(
        name,
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("declare queue");
}

/// Number of ready messages, by passive declare. RabbitMQ answers this query ahead of
/// deliveries still queued for the queue process (its `stat` call is prioritised), so use it
/// only once the messages are known to be enqueued: after publisher confirms, a tx.commit, or
/// deliveries/basic.get replies that depend on them.
pub async fn message_count(ch: &Channel, queue: &str) -> u32 {
    w!(ch.queue_declare(
        queue,
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("passive declare")
    .message_count()
}

/// Publish without waiting for anything.
pub async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    publish_with(ch, exchange, key, body, BasicProperties::default()).await;
}

pub async fn publish_with(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    // Dropping the PublisherConfirm is fine: on a non-confirm channel it is NotRequested.
    drop(
        w!(ch.basic_publish(exchange, key, BasicPublishOptions::default(), body, props))
            .expect("basic.publish"),
    );
}

/// The next delivery of `consumer` (fails on timeout, error or cancellation).
pub async fn next(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    match w!(consumer.next()) {
        Some(Ok(d)) => d,
        Some(Err(e)) => panic!("consumer error: {e:?}"),
        None => panic!("consumer was cancelled"),
    }
}

/// basic.get (no_ack as given) until get-empty; returns the bodies.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = w!(ch.basic_get(queue, lapin::options::BasicGetOptions { no_ack: true }))
        .expect("basic.get")
    {
        out.push(m.delivery.data);
    }
    out
}

/// Whether queue `q` exists (passive declare on a fresh channel of `conn`).
pub async fn queue_exists(conn: &Connection, q: &str) -> bool {
    let ch = channel(conn).await;
    match w!(ch.queue_declare(
        q,
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default()
    )) {
        Ok(_) => {
            let _ = w!(ch.close(200, "OK"));
            true
        }
        Err(e) => {
            assert_eq!(code_text(&e), (404, not_found_queue(q)));
            false
        }
    }
}

/// Wait until queue `q` no longer exists. For deletions that RabbitMQ itself performs
/// asynchronously (auto-delete, exclusive queues of a closed connection): polls, and fails
/// after `TIMEOUT`.
pub async fn wait_queue_gone(conn: &Connection, q: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while queue_exists(conn, q).await {
        assert!(
            Instant::now() < deadline,
            "queue {q} still exists after {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Publish on `ch` in confirm mode (selected on first use) and wait for the broker's ack:
/// once this returns, the message is in its queues.
pub async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    if !ch.status().confirm() {
        w!(ch.confirm_select(Default::default())).expect("confirm.select");
    }
    let confirm = w!(ch.basic_publish(
        exchange,
        key,
        BasicPublishOptions::default(),
        body,
        BasicProperties::default()
    ))
    .expect("basic.publish");
    let c = w!(confirm).expect("publisher confirm");
    assert!(c.is_ack(), "message was nacked: {c:?}");
}
