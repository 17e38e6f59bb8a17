//! Tasks for the memory-limit tests: large results, checksums of them, and a
//! task that holds unmanaged memory until told to let go.

use std::time::Duration;

/// `n` bytes that depend on `seed`: byte `i` is `(seed + i) % 251`.
#[rudask::task]
pub fn mem_block(seed: u64, n: usize) -> Vec<u8> {
    block(seed, n)
}

/// The bytes [`mem_block`] makes, for checking results on the client side.
pub fn block(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| ((seed + i) % 251) as u8).collect()
}

/// A checksum of `data` (FNV-1a).
#[rudask::task]
pub fn mem_checksum(data: Vec<u8>) -> u64 {
    checksum(&data)
}

/// FNV-1a of `data`, as [`mem_checksum`] computes it.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Allocates and touches `n` bytes (memory the worker does not manage), sets
/// event `name`-holding, waits up to a minute for event `name`-release, then
/// frees them; returns `n`.
#[rudask::task]
pub fn hold_memory(name: String, n: usize) -> rudask::Result<usize> {
    let held = std::hint::black_box(vec![1u8; n]);
    let client = rudask::worker_client()?;
    rudask::coord::blocking::Event::new(&client, &format!("{name}-holding")).set()?;
    rudask::coord::blocking::Event::new(&client, &format!("{name}-release"))
        .wait(Some(Duration::from_secs(60)))?;
    Ok(std::hint::black_box(held).len())
}
