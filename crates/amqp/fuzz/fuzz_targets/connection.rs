//! The AMQP connection state machine fed raw bytes: each input is what a client sends on
//! one connection to a live broker (one broker for the whole run, so state built by one
//! input is there for the next). Half of the inputs are prefixed with a valid protocol
//! header and login, so the fuzzer reaches channels and methods quickly. Nothing may
//! panic, and the connection must end once the client's side is closed: a hang is a
//! failure too.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use warren_amqp::AmqpConfig;
use warren_core::{Broker, BrokerConfig};

struct World {
    rt: Runtime,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    shutdown: watch::Receiver<bool>,
    _tx: watch::Sender<bool>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("warren-fuzz-{}", std::process::id()));
        let broker = Broker::open(BrokerConfig {
            data_dir: dir,
            ..Default::default()
        })
        .unwrap();
        rt.spawn(broker.scheduler.clone().run());
        let (tx, shutdown) = watch::channel(false);
        let cfg = AmqpConfig {
            handshake_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        World { rt, broker, cfg: Arc::new(cfg), shutdown, _tx: tx }
    })
}

/// Protocol header, start-ok (PLAIN guest/guest), tune-ok, open "/".
fn login() -> Vec<u8> {
    let mut out = b"AMQP\x00\x00\x09\x01".to_vec();
    let mut method = |payload: Vec<u8>| {
        out.push(1);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out.push(0xce);
    };
    let mut p = vec![0, 10, 0, 11, 0, 0, 0, 0, 5];
    p.extend_from_slice(b"PLAIN");
    let resp = b"\x00guest\x00guest";
    p.extend_from_slice(&(resp.len() as u32).to_be_bytes());
    p.extend_from_slice(resp);
    p.push(5);
    p.extend_from_slice(b"en_US");
    method(p);
    method(vec![0, 10, 0, 31, 0x07, 0xff, 0, 2, 0, 0, 0, 0]);
    method(vec![0, 10, 0, 40, 1, b'/', 0, 0]);
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut input = Vec::new();
    if data.first().is_some_and(|b| b & 1 == 1) {
        input.extend_from_slice(&login());
    }
    input.extend_from_slice(data.get(1..).unwrap_or(&[]));
    w.rt.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 16);
        let peer = "127.0.0.1:1".parse().unwrap();
        let conn = tokio::spawn(warren_amqp::serve_io(
            server,
            peer,
            w.broker.clone(),
            w.cfg.clone(),
            w.shutdown.clone(),
        ));
        let (mut rd, mut wr) = tokio::io::split(client);
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; 1 << 16];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let _ = wr.write_all(&input).await;
        let _ = wr.shutdown().await;
        drop(wr);
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the connection did not end after the client closed its side")
            .expect("the connection task panicked");
        reader.abort();
    });
});
