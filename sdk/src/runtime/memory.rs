//! What a worker measures about its process for the scheduler.

/// Resident memory of this process in bytes, or 0 where it cannot be read.
/// Read once per heartbeat, never per task.
pub(crate) fn process_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(vm_rss).unwrap_or(0)
}

/// Hands memory freed by spilled results back to the operating system, so
/// the process's resident memory reflects the spill. Called after a spill,
/// not per task.
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no live allocation and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The `VmRSS` line of `/proc/<pid>/status`, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_vm_rss_in_bytes() {
        assert_eq!(
            super::vm_rss("Name:\tx\nVmRSS:\t   2048 kB\nVmSwap: 0 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(super::vm_rss("Name:\tx\n"), None);
        if cfg!(target_os = "linux") {
            assert!(super::process_rss() > 0);
        }
    }
}
