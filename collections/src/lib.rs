//! # rudask-collections
//!
//! Lazy, partitioned collections that run on a rudask cluster, in the spirit
//! of `dask.dataframe` and `dask.array`:
//!
//! - [`DataFrame`]: partitions are Arrow `RecordBatch`es, moved between
//!   processes as Arrow IPC.
//! - [`Array`]: chunks are `ndarray::ArrayD`, moved as raw little-endian
//!   bytes.
//!
//! Operations build a task graph and run nothing; `client.persist(&df)` runs
//! it and keeps the partitions in memory on the workers, `client.compute(&df)`
//! runs it and brings back one value. Both types implement
//! [`rudask::Collection`], the trait any crate can implement for its own
//! collection type. Their kernels are registered tasks, so every worker
//! binary that links this crate (the stock `rudask worker` does) runs them.
#![deny(missing_docs)]

pub mod array;
pub mod dataframe;
mod kernel;
pub mod scalar;
mod token;

pub use array::{Array, NdArray};
pub use dataframe::{DataFrame, Table};
pub use scalar::Scalar;
