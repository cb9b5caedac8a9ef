//! What the tsdb benches share: sizes and switches read from the environment, and the
//! process's resident memory.

/// The number in the environment variable `name`, or `default` when it is unset or not a
/// number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0).
#[allow(dead_code, reason = "the head bench measures RSS, not its peak")]
pub fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}
