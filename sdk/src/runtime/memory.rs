//! What a worker measures about its process for the scheduler.

/// Resident memory of this process in bytes, or 0 where it cannot be read.
/// Read once per heartbeat, never per task.
pub(crate) fn process_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(vm_rss).unwrap_or(0)
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
