//! `rudask-test-worker`: the `rudask` command line with the test tasks linked
//! in. It starts as a user's program does, with `rudask::init()`, so every
//! worker the tests start goes through that path.

use rudask_collections as _;
use rudask_plugins as _;
use rudask_tests as _;

fn main() -> std::process::ExitCode {
    rudask::init();
    rudask::cli::main()
}
