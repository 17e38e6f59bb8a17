//! The configuration layer of `rudask scheduler` and `rudask worker` across
//! real processes: a file, environment variables and flags, in that order of
//! precedence; bad files stop the process naming the file and the key; JSON
//! logs.

mod common;

use common::{eventually, within, Cluster};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_rudask-test-worker");

/// A configuration file in the temporary directory, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path =
            std::env::temp_dir().join(format!("rudask-config-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_its_settings_from_file_environment_and_flags() {
    let cluster = Cluster::scheduler().await;
    let file = ConfigFile::new(
        "worker",
        "[worker]\nname = \"from-file\"\nnthreads = 3\nresources = \"GPU=1\"\nno_metrics = true\n",
    );
    // The name comes from the file, the slots from the environment over the
    // file, the resources from a flag over the file.
    let _worker = tokio::process::Command::new(BIN)
        .args(["worker", "--scheduler", &cluster.addr, "--config"])
        .arg(&file.0)
        .args(["--resources", "GPU=4", "--connection-file"])
        .arg(cluster.connection_file.as_ref().expect("a TLS cluster"))
        .env("RUDASK_NTHREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = cluster.client().await;
    let info = eventually("the configured worker joins", || async {
        let info = within(client.scheduler_info(&[])).await.unwrap();
        info.workers.into_iter().next()
    })
    .await;
    assert_eq!(info.name, "from-file");
    assert_eq!(info.nthreads, 2);
    assert_eq!(info.resources, vec![("GPU".to_string(), 4.0)]);
}

/// Runs `args` with `RUDASK_CONFIG=file`, expecting it to exit; returns
/// whether it succeeded and its stderr.
async fn run_to_exit(args: &[&str], file: &ConfigFile) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .env("RUDASK_CONFIG", &file.0)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within(out).await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_file_stops_the_process_naming_file_and_key() {
    let file = ConfigFile::new("bad-type", "[scheduler]\nport = \"high\"\n");
    let (ok, stderr) = run_to_exit(&["scheduler", "--no-dashboard"], &file).await;
    assert!(!ok);
    let path = file.0.display().to_string();
    assert!(stderr.contains("scheduler.port in ") && stderr.contains(&path), "{stderr}");

    let file = ConfigFile::new("unknown-key", "[worker]\nthreads = 2\n");
    let (ok, stderr) = run_to_exit(&["worker", "tcp://127.0.0.1:1"], &file).await;
    assert!(!ok);
    assert!(stderr.contains("worker.threads in ") && stderr.contains("nthreads"), "{stderr}");

    let file = ConfigFile::new("not-toml", "[worker\n");
    let (ok, stderr) = run_to_exit(&["worker", "tcp://127.0.0.1:1"], &file).await;
    assert!(!ok);
    assert!(stderr.contains(&file.0.display().to_string()) && stderr.contains("TOML"), "{stderr}");

    let missing = ConfigFile(std::env::temp_dir().join("rudask-config-does-not-exist.toml"));
    let (ok, stderr) = run_to_exit(&["scheduler"], &missing).await;
    assert!(!ok);
    assert!(stderr.contains("does-not-exist") && stderr.contains("not found"), "{stderr}");

    let file = ConfigFile::new("no-address", "");
    let (ok, stderr) = run_to_exit(&["worker"], &file).await;
    assert!(!ok);
    assert!(stderr.contains("no scheduler address"), "{stderr}");
}

/// A scheduler's work directory, removed when the test ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let file = ConfigFile::new("json", "[logging]\nformat = \"json\"\n[scheduler]\nport = 0\n");
    let work_dir =
        WorkDir(std::env::temp_dir().join(format!("rudask-json-{}", std::process::id())));
    let mut scheduler = tokio::process::Command::new(BIN)
        .args(["scheduler", "--no-dashboard", "--no-dataset-store", "--config"])
        .arg(&file.0)
        .arg("--work-dir")
        .arg(&work_dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(scheduler.stderr.take().unwrap()).lines();
    let started = within(async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the scheduler exited");
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if v["fields"]["message"] == "scheduler started" {
                break v;
            }
        }
    })
    .await;
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(
        started["fields"]["address"].as_str().unwrap().starts_with("tls://127.0.0.1:"),
        "{started}"
    );
}
