//! Large buffers. Moving a 200 MB value touches 50,000 fresh 4 KiB pages per
//! buffer, and the page faults cost more than the copy. Buffers of at least
//! [`LARGE`] bytes are allocated here and advised to use transparent huge
//! pages, which the kernel then faults in 2 MiB at a time.
//!
//! ```
//! let b = rudask_core::mem::bytes_with_capacity(8 << 20);
//! assert!(b.capacity() >= 8 << 20);
//! ```
#![allow(unsafe_code)]

use bytes::BytesMut;

/// Buffers at least this large get huge-page advice.
pub const LARGE: usize = 4 << 20;

fn advise_huge_pages(ptr: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (ptr as usize).div_ceil(PAGE) * PAGE;
        let end = (ptr as usize + len) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies inside one live allocation owned by the
            // caller; MADV_HUGEPAGE is advice about how to back it and never
            // changes its contents or validity. A failure is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

/// An empty `BytesMut` with room for `capacity` bytes.
pub fn bytes_with_capacity(capacity: usize) -> BytesMut {
    let b = BytesMut::with_capacity(capacity);
    if capacity >= LARGE {
        advise_huge_pages(b.as_ptr(), b.capacity());
    }
    b
}

/// An empty `Vec` with room for `capacity` elements.
///
/// ```
/// let v: Vec<f64> = rudask_core::mem::vec_with_capacity(1 << 20);
/// assert!(v.capacity() >= 1 << 20);
/// ```
pub fn vec_with_capacity<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes >= LARGE {
        advise_huge_pages(v.as_ptr().cast::<u8>(), bytes);
    }
    v
}
