//! The `rudask` command: `rudask scheduler`, `rudask worker ADDR`, `rudask demo`.
//! It lives in this crate so that the ready-made plugins are linked in and
//! can be enabled with `--plugin NAME[:JSON]`, and the kernels of the
//! collections (DataFrame, Array) run on a stock worker.

mod demo;

use rudask_plugins as _;

fn main() -> std::process::ExitCode {
    rudask::cli::main_with_demo(Some(demo::run))
}
