//! The nanny: `rudask worker` supervises its worker as a child process (a
//! run of the same executable with the same arguments, marked by
//! [`ENV_CHILD`]) and starts a fresh one when it dies abnormally — killed by a
//! signal, a panic, or past its memory's terminate threshold — with a growing
//! delay and a limit on quick successive restarts. A child that exits
//! normally or with an error (bad options, scheduler gone) ends the nanny
//! with the same code. The child dies with its nanny (Linux's parent-death
//! signal), so killing the nanny, even with SIGKILL, leaves no orphan.

use super::monitor::EXIT_MEMORY;
use std::time::{Duration, Instant};

/// Set in a worker started by a nanny, to the nanny's process id.
pub(crate) const ENV_CHILD: &str = "RUDASK_NANNY_CHILD";

/// Restarts in a row (each child living less than [`STABLE`]) before the
/// nanny gives up.
const MAX_RESTARTS: u32 = 5;

/// A child that ran this long resets the restart count.
const STABLE: Duration = Duration::from_secs(60);

/// Delay before the first restart; it doubles with every quick restart.
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// Exit code of a Rust process that panicked on its main thread.
const EXIT_PANIC: i32 = 101;

/// Whether this process is a worker started by a nanny.
pub(crate) fn is_child() -> bool {
    std::env::var_os(ENV_CHILD).is_some()
}

/// Runs the worker of this command line as a child process until it exits
/// normally, restarting it when it dies abnormally; gives the exit status.
pub(crate) fn supervise() -> u8 {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: the nanny cannot find its own executable: {e}");
            return 1;
        }
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let me = std::process::id();
    let mut quick_restarts = 0u32;
    loop {
        let started = Instant::now();
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(&args).env(ENV_CHILD, me.to_string());
        die_with_parent(&mut cmd, me);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: the nanny could not start its worker {}: {e}", exe.display());
                return 1;
            }
        };
        let pid = child.id();
        tracing::info!(nanny = me, worker = pid, "nanny started its worker");
        let status = match child.wait() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: the nanny lost track of its worker: {e}");
                return 1;
            }
        };
        remove_local_dirs(pid);
        let why = match status.code() {
            Some(0) => return 0,
            Some(EXIT_MEMORY) => "its memory passed the terminate threshold".to_string(),
            Some(EXIT_PANIC) => "it panicked".to_string(),
            Some(code) => return u8::try_from(code).unwrap_or(1),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("it was killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        if started.elapsed() >= STABLE {
            quick_restarts = 0;
        }
        quick_restarts += 1;
        if quick_restarts > MAX_RESTARTS {
            tracing::error!(worker = pid, %why, "the worker died {MAX_RESTARTS} times in a row soon after starting; the nanny gives up");
            return 1;
        }
        let delay = FIRST_DELAY * 2u32.pow(quick_restarts - 1);
        tracing::warn!(worker = pid, %why, ?delay, "the worker died; the nanny restarts it");
        std::thread::sleep(delay);
    }
}

/// Makes the child get SIGKILL when the nanny dies, and refuse to start if
/// the nanny died before that was set up.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut std::process::Command, nanny: u32) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: runs in the forked child before exec, and calls only
        // async-signal-safe functions (prctl, getppid), allocating nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() as u32 != nanny {
                    return Err(std::io::Error::other("the nanny died while starting its worker"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (cmd, nanny);
}

/// Removes the scratch directories a killed worker left behind (a worker
/// that stops normally removes its own).
fn remove_local_dirs(pid: u32) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    // Named rudask-worker-NAME-PID-RANDOM (see `LocalDir`).
    let marker = format!("-{pid}");
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let mine = name.rsplit_once('-').is_some_and(|(head, _)| head.ends_with(&marker));
        if name.starts_with("rudask-worker-") && mine {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn removes_only_the_dead_workers_scratch_directories() {
        let tmp = std::env::temp_dir();
        let pid = 4_000_000_000u32 - std::process::id();
        let dead = tmp.join(format!("rudask-worker-w-{pid}-1a2b"));
        let other = tmp.join(format!("rudask-worker-w-{pid}0-1a2b"));
        let named_like_it = tmp.join(format!("rudask-worker-w-{pid}-x-{}-ff", pid + 1));
        for d in [&dead, &other, &named_like_it] {
            std::fs::create_dir_all(d.join("spill")).unwrap();
        }
        super::remove_local_dirs(pid);
        assert!(!dead.exists());
        assert!(other.exists() && named_like_it.exists());
        for d in [&other, &named_like_it] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
