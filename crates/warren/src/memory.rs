//! The memory monitor: raises the broker's memory alarm while its resident memory is above
//! the high watermark (RabbitMQ's `vm_memory_high_watermark`), which blocks publishers
//! until memory falls below it again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warren_core::Broker;
use warren_http::sys;

/// RabbitMQ samples memory every 500 ms (`memory_monitor_interval`).
const INTERVAL: Duration = Duration::from_millis(500);

/// The watermark in bytes: `absolute` if given, else `relative` × total memory.
pub fn watermark(relative: f64, absolute: Option<u64>, total: u64) -> u64 {
    absolute.unwrap_or((relative * total as f64) as u64)
}

pub async fn monitor(broker: Arc<Broker>, limit: u64, mut shutdown: watch::Receiver<bool>) {
    broker.alarms.set_memory_limit(limit);
    loop {
        broker.alarms.set_memory(sys::rss_bytes() > limit);
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}
