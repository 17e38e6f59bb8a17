//! [`Array`]: a lazy, chunked n-dimensional array whose chunks are
//! `ndarray::ArrayD`s.

/// A lazy, chunked n-dimensional array.
#[derive(Clone, Debug)]
pub struct Array {}
