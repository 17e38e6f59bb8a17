//! The `rudask` command: `rudask scheduler`, `rudask worker ADDR`, `rudask demo`.
//! It lives in this crate so that the ready-made plugins are linked in and
//! can be enabled with `--plugin NAME[:JSON]`.

use rudask_plugins as _;

fn main() -> std::process::ExitCode {
    rudask::cli::main()
}
