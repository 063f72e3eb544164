//! Facts about the process and the machine that RabbitMQ's node figures report: memory,
//! file descriptors, threads, disk space. Read from `/proc` and `statvfs`; zeros where
//! the platform does not tell.

use std::path::Path;

fn proc_status_field(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of the broker process, bytes.
pub fn rss_bytes() -> u64 {
    proc_status_field("VmRSS:").map_or(0, |kb| kb * 1024)
}

/// Threads of the broker process (RabbitMQ's `proc_used` counts Erlang processes).
pub fn threads() -> u64 {
    proc_status_field("Threads:").unwrap_or(0)
}

/// Open file descriptors.
pub fn fd_used() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// The open file limit.
pub fn fd_total() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct into `r`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        0
    }
}

/// The memory the broker may use, bytes: the machine's RAM, or its cgroup's limit if
/// lower (a container's limit is what the kernel enforces).
pub fn total_memory() -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = s
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
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

/// The memory high watermark, bytes: the one the memory monitor enforces, or RabbitMQ's
/// default (0.4 of memory) when no monitor runs.
pub fn memory_limit(b: &warren_core::Broker) -> u64 {
    match b.alarms.memory_limit() {
        0 => total_memory() * 2 / 5,
        l => l,
    }
}

/// Free space where `dir` is, bytes (what an unprivileged writer can use).
pub fn disk_free(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return 0;
        }
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

pub fn processors() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// CPU time the process has used, seconds.
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may contain spaces) start after the last ')'.
    let Some(rest) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (Some(u), Some(k)) = (f.get(11), f.get(12)) else {
        return 0.0;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (u.parse::<f64>().unwrap_or(0.0) + k.parse::<f64>().unwrap_or(0.0)) / hz
}
