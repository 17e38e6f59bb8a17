//! `rudask-test-worker`: the `rudask` command line with the test tasks linked in.

use rudask_collections as _;
use rudask_plugins as _;
use rudask_tests as _;

fn main() -> std::process::ExitCode {
    rudask::cli::main()
}
