//! The memory monitor: raises the broker's memory alarm while its resident memory is above
//! the high watermark (RabbitMQ's `vm_memory_high_watermark`), which blocks publishers
//! until memory falls below it again. It also hands memory the broker freed back to the
//! operating system (see [`release_free_memory`]).

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

/// How often freed memory is handed back, in monitor ticks (5 s). A trim of a heap with
/// little free in it costs microseconds.
const RELEASE_EVERY: u32 = 10;

/// glibc's allocator keeps what the broker frees (the buffers of a thousand connections
/// that closed, a drained backlog) resident in its arenas for reuse, and a later burst
/// touches other pages of them, so the resident size only ever grows: 1,000 idle AMQP
/// connections opened and closed ten times left 111 MiB resident for 0.3 MiB in use.
/// `malloc_trim` returns the free pages; without it the RSS would also set off the memory
/// alarm for memory nobody uses.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes the allocator's own locks; it frees nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub async fn monitor(broker: Arc<Broker>, limit: u64, mut shutdown: watch::Receiver<bool>) {
    broker.alarms.set_memory_limit(limit);
    let mut tick: u32 = 0;
    loop {
        tick = tick.wrapping_add(1);
        let mut rss = sys::rss_bytes();
        if rss > limit || tick.is_multiple_of(RELEASE_EVERY) {
            release_free_memory();
            rss = sys::rss_bytes();
        }
        broker.alarms.set_memory(rss > limit);
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}
