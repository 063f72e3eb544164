//! The disk-free monitor: raises the broker's disk alarm while free space under the data
//! directory is below the limit (RabbitMQ's `disk_free_limit`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warren_core::Broker;

/// Free bytes available to unprivileged users on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the struct we pass; c is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

pub async fn monitor(
    broker: Arc<Broker>,
    dir: PathBuf,
    limit: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match free_bytes(&dir) {
            Ok(free) => broker.alarms.set_disk(free < limit),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot read free disk space")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
