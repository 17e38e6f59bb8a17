//! Tasks for the memory-limit tests: large results, checksums of them, and a
//! task that holds unmanaged memory until told to let go.

use std::time::Duration;

/// `n` bytes that depend on `seed`: see [`block`].
#[rudask::task]
pub fn mem_block(seed: u64, n: usize) -> Vec<u8> {
    block(seed, n)
}

/// The bytes [`mem_block`] makes, for checking results on the client side:
/// `seed % 251` throughout, except that every 4 KiB page starts with its own
/// number and the seed, so a swapped, shifted or mixed-up page shows.
pub fn block(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![(seed % 251) as u8; n];
    for (page, chunk) in v.chunks_mut(4096).enumerate() {
        let mark = (seed << 32 | page as u64).to_le_bytes();
        let len = mark.len().min(chunk.len());
        chunk[..len].copy_from_slice(&mark[..len]);
    }
    v
}

/// A checksum of `data` (XXH3).
#[rudask::task]
pub fn mem_checksum(data: Vec<u8>) -> u64 {
    checksum(&data)
}

/// XXH3 of `data`, as [`mem_checksum`] computes it.
pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
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
