//! The `rudask` command: `rudask scheduler`, `rudask worker ADDR`, `rudask demo`.

fn main() -> std::process::ExitCode {
    rudask::cli::main()
}
