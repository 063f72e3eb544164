//! `warren-perf`: a load generator for AMQP 0-9-1 brokers — Warren's PerfTest. It drives
//! Warren, RabbitMQ or any other 0-9-1 broker the same way, so their numbers compare.
//!
//! # Layout
//! - [`cli`]: flags (PerfTest's names where they exist) and their validation into a
//!   plan of connections and channels.
//! - [`uri`]: `amqp://` URIs.
//! - [`client`]: a tiny request/response AMQP client on `warren-amqp-codec` for the
//!   handshake and setup methods.
//! - [`worker`]: one task per connection running its producers and consumers in one
//!   loop: batched publishes, one large read at a time.
//! - [`publish`]: the pre-encoded publish template the producers copy from.
//! - [`scan`]: in-place frame scanning for deliveries and confirms.
//! - [`confirms`]: the publisher-confirm window.
//! - [`integrity`]: which messages arrived, to catch loss and duplicates.
//! - [`payload`]: the timestamp + sequence stamp in each body.
//! - [`stats`]: counters, latency histograms, per-second samples, the summary.
//! - [`procstat`]: broker and own CPU time and memory from `/proc`.
//! - [`run`]: the orchestration: declare, start, sample, stop, clean up, report.
//! - [`compare`]: `warren-perf compare`, a scenario matrix against several brokers, and
//!   [`scenarios`], its catalog of workloads and targets.
//! - [`plot`]: `warren-perf plot`, PNG and SVG charts of a comparison.
//!
//! Why not lapin: the tool has to stay far from being the bottleneck on a 2-core box
//! where it shares the CPU with the broker it measures, so the hot path is one memcpy per
//! publish and a few byte reads per delivery, with one syscall per batch.

mod cli;
mod client;
mod compare;
mod confirms;
mod integrity;
mod payload;
mod plot;
mod procstat;
mod publish;
mod run;
mod scan;
mod scenarios;
mod stats;
mod uri;
mod worker;

use clap::Parser;

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Plot(args) => exit(plot::plot(args)),
        Command::Compare(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            exit(runtime.block_on(compare::compare(args)))
        }
    };
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warren-perf: {e}");
            std::process::exit(2);
        }
    };
    // One thread: everything on this thread, woken by epoll alone (no cross-thread
    // unparking, which costs more CPU than the protocol work on a small box).
    let mut builder = if plan.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(plan.threads);
        b
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let code = match runtime.block_on(run::run(plan)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warren-perf: {e}");
            1
        }
    };
    // Don't wait for stragglers (a connection stuck in close): the report is out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

fn exit(r: Result<i32, String>) -> ! {
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("warren-perf: {e}");
            std::process::exit(2)
        }
    }
}
