//! The memory monitor: raises the broker's memory alarm while its resident memory is above
//! the high watermark (RabbitMQ's `vm_memory_high_watermark`), which blocks publishers
//! until memory falls below it again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warren_core::Broker;

/// RabbitMQ samples memory every 500 ms (`memory_monitor_interval`).
const INTERVAL: Duration = Duration::from_millis(500);

/// The memory the broker may use: the machine's RAM, or the cgroup's limit if lower
/// (a container's limit is what the kernel enforces).
pub fn total_memory() -> u64 {
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|s| s.trim().parse::<u64>().ok())
    .min();
    match cgroup {
        Some(c) if c > 0 && (ram == 0 || c < ram) => c,
        _ => ram,
    }
}

/// The broker's resident set size, in bytes.
pub fn rss_bytes() -> u64 {
    // statm's second field: resident pages.
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as u64
}

/// The watermark in bytes: `absolute` if given, else `relative` × total memory.
pub fn watermark(relative: f64, absolute: Option<u64>, total: u64) -> u64 {
    absolute.unwrap_or((relative * total as f64) as u64)
}

pub async fn monitor(broker: Arc<Broker>, limit: u64, mut shutdown: watch::Receiver<bool>) {
    broker.alarms.set_memory_limit(limit);
    loop {
        broker.alarms.set_memory(rss_bytes() > limit);
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}
