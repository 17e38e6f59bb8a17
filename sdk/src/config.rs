//! Settings of `rudask scheduler` and `rudask worker`, merged by figment from,
//! lowest first: defaults, `rudask.toml` (or `--config FILE` /
//! `RUDASK_CONFIG`), `RUDASK_*` environment variables, command-line flags.
//!
//! To add a setting: a field in its section struct (with its default in the
//! section's `Default`), a row in [`SETTINGS`] (key, environment variable,
//! flag, default, meaning; a unit test checks that the README documents every
//! row), and an `Option` (or `bool`) field with the same name in the
//! command's clap arguments in `cli.rs`, skipped when absent so that an
//! absent flag does not override the file or the environment.

use crate::error::{Error, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file read from the current directory when no other is named.
pub(crate) const DEFAULT_FILE: &str = "rudask.toml";

/// Every setting, documented: its key in the file, environment variable,
/// flag, default and meaning.
pub(crate) struct Setting {
    pub(crate) key: &'static str,
    pub(crate) env: &'static str,
    pub(crate) flag: &'static str,
    pub(crate) default: &'static str,
    pub(crate) meaning: &'static str,
}

const fn setting(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Setting {
    Setting { key, env, flag, default, meaning }
}

/// The settings, in the order the README lists them. `flag` and `default`
/// are Markdown; `env` is empty for settings without a variable.
pub(crate) const SETTINGS: &[Setting] = &[
    setting("scheduler.host", "RUDASK_SCHEDULER_HOST", "`--host`", "`127.0.0.1`", "Interface the scheduler listens on."),
    setting("scheduler.port", "RUDASK_SCHEDULER_PORT", "`--port`", "`8786`", "Port the scheduler listens on (0: any free port)."),
    setting("scheduler.dataset_store", "RUDASK_DATASET_STORE", "`--dataset-store`", "`rudask-scheduler-PORT/datasets` in the temporary directory", "Directory of the durable dataset store."),
    setting("scheduler.no_dataset_store", "RUDASK_NO_DATASET_STORE", "`--no-dataset-store`", "`false`", "Keep published datasets in memory only."),
    setting("scheduler.plugins", "", "`--plugin` (repeatable)", "`[]`", "Scheduler plugins linked into the binary, `NAME` or `NAME:JSON`."),
    setting("scheduler.dashboard_address", "RUDASK_DASHBOARD_ADDRESS", "`--dashboard-address`", "`127.0.0.1:8787`", "Where the web dashboard and `/metrics` are served (port 0: any free port)."),
    setting("scheduler.no_dashboard", "RUDASK_NO_DASHBOARD", "`--no-dashboard`", "`false`", "Serve no dashboard and no `/metrics`."),
    setting("scheduler.work_dir", "RUDASK_WORK_DIR", "`--work-dir`", "`rudask-scheduler-PORT` in the temporary directory", "Where the scheduler keeps its CA, certificate, token and connection file (made on first start, reused later)."),
    setting("scheduler.tls_cert", "", "`--tls-cert`", "generated", "The scheduler's TLS certificate chain (PEM), instead of a generated one; needs `tls_key` and `tls_ca`."),
    setting("scheduler.tls_key", "", "`--tls-key`", "generated", "The private key of `tls_cert` (PEM)."),
    setting("scheduler.tls_ca", "", "`--tls-ca`", "generated", "The CA (PEM) that clients and workers trust, with `tls_cert`."),
    setting("scheduler.insecure", "RUDASK_INSECURE", "`--insecure`", "`false`", "Turn TLS and the token off: anyone who can reach the port controls the cluster. Trusted networks only."),
    setting("worker.scheduler", "RUDASK_SCHEDULER", "`SCHEDULER` argument or `--scheduler`", "none (required)", "Address of the scheduler, e.g. `tcp://10.0.0.1:8786`."),
    setting("worker.nthreads", "RUDASK_NTHREADS", "`--nthreads`", "one per core", "Task slots."),
    setting("worker.name", "RUDASK_WORKER_NAME", "`--name`", "its data address", "Worker name."),
    setting("worker.host", "RUDASK_WORKER_HOST", "`--host`", "`127.0.0.1`", "Interface of the worker's data port."),
    setting("worker.resources", "RUDASK_WORKER_RESOURCES", "`--resources` (repeatable)", "none", "Resources offered to tasks, e.g. `\"GPU=2 MEMORY=8e9\"` or a list."),
    setting("worker.plugins", "", "`--plugin` (repeatable)", "`[]`", "Worker plugins linked into the binary, `NAME` or `NAME:JSON`."),
    setting("worker.metrics_address", "RUDASK_METRICS_ADDRESS", "`--metrics-address`", "`127.0.0.1:0`", "Where the worker serves `/metrics` (port 0: any free port)."),
    setting("worker.no_metrics", "RUDASK_NO_METRICS", "`--no-metrics`", "`false`", "Serve no `/metrics` on the worker."),
    setting("worker.memory_limit", "RUDASK_WORKER_MEMORY_LIMIT", "`--memory-limit`", "`auto`", "Memory the worker may use: `auto` (this machine's memory / workers on it), `none`, a percentage (`80%`) or a size (`4GiB`, `4e9`)."),
    setting("worker.memory_target", "RUDASK_WORKER_MEMORY_TARGET", "`--memory-target`", "`0.6`", "Fraction of the limit above which held results spill to disk (least recently used first), or `off`."),
    setting("worker.memory_spill", "RUDASK_WORKER_MEMORY_SPILL", "`--memory-spill`", "`0.7`", "Fraction of the limit above which process memory spills more, or `off`."),
    setting("worker.memory_pause", "RUDASK_WORKER_MEMORY_PAUSE", "`--memory-pause`", "`0.8`", "Fraction of the limit above which the worker takes no new task, or `off`."),
    setting("worker.memory_terminate", "RUDASK_WORKER_MEMORY_TERMINATE", "`--memory-terminate`", "`0.95`", "Fraction of the limit above which the nanny restarts the worker, or `off`."),
    setting("worker.no_nanny", "RUDASK_NO_NANNY", "`--no-nanny`", "`false`", "Run the worker in this process, without a nanny that restarts it."),
    setting("worker.connection_file", "RUDASK_CONNECTION_FILE", "`--connection-file`", "none", "The connection file the scheduler wrote: its address, token and CA."),
    setting("worker.token", "RUDASK_TOKEN", "`--token`", "none", "The cluster's token."),
    setting("worker.tls_ca", "RUDASK_TLS_CA", "`--tls-ca`", "none", "The cluster's CA certificate (a PEM file, or PEM text)."),
    setting("worker.tls_cert", "", "`--tls-cert`", "the scheduler's", "Certificate chain (PEM) the data port serves instead of the cluster certificate the scheduler hands out; needs `tls_key`."),
    setting("worker.tls_key", "", "`--tls-key`", "the scheduler's", "The private key of `tls_cert` (PEM)."),
    setting("logging.level", "RUDASK_LOG_LEVEL", "`--log-level`", "`info`", "Log filter, e.g. `warn,rudask=debug`; `RUST_LOG` is read when `RUDASK_LOG_LEVEL` is not set."),
    setting("logging.format", "RUDASK_LOG_FORMAT", "`--log-format`", "`text`", "`text` for people, `json` for one JSON object per line."),
];

/// The settings of `sections` as a Markdown table, as the README and
/// `--help` show them.
pub(crate) fn table(sections: &[&str]) -> String {
    let mut t =
        String::from("| Key | Environment | Flag | Default | Meaning |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let section = s.key.split('.').next().unwrap_or_default();
        if sections.contains(&section) {
            let env = if s.env.is_empty() { "—".to_string() } else { format!("`{}`", s.env) };
            t.push_str(&format!(
                "| `{}` | {env} | {} | {} | {} |\n",
                s.key, s.flag, s.default, s.meaning
            ));
        }
    }
    t
}

/// The help text after a command's flags: where its settings come from and the table.
pub(crate) fn help(section: &str) -> String {
    format!(
        "Settings come from, lowest first: defaults, rudask.toml in the current directory \
         (or --config FILE / RUDASK_CONFIG), RUDASK_* environment variables, flags.\n\n{}",
        table(&[section, "logging"])
    )
}

/// Every setting of both commands; a command reads its own section and
/// `logging`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) scheduler: SchedulerSection,
    pub(crate) worker: WorkerSection,
    pub(crate) logging: LoggingSection,
}

/// `[scheduler]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SchedulerSection {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) dataset_store: Option<PathBuf>,
    pub(crate) no_dataset_store: bool,
    pub(crate) plugins: Vec<String>,
    pub(crate) dashboard_address: String,
    pub(crate) no_dashboard: bool,
    pub(crate) work_dir: Option<PathBuf>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) insecure: bool,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        SchedulerSection {
            host: "127.0.0.1".into(),
            port: 8786,
            dataset_store: None,
            no_dataset_store: false,
            plugins: Vec::new(),
            dashboard_address: "127.0.0.1:8787".into(),
            no_dashboard: false,
            work_dir: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            insecure: false,
        }
    }
}

/// `[worker]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct WorkerSection {
    pub(crate) scheduler: Option<String>,
    pub(crate) nthreads: Option<usize>,
    pub(crate) name: Option<String>,
    pub(crate) host: String,
    pub(crate) resources: Words,
    pub(crate) plugins: Vec<String>,
    pub(crate) metrics_address: String,
    pub(crate) no_metrics: bool,
    pub(crate) memory_limit: String,
    pub(crate) memory_target: String,
    pub(crate) memory_spill: String,
    pub(crate) memory_pause: String,
    pub(crate) memory_terminate: String,
    pub(crate) no_nanny: bool,
    pub(crate) connection_file: Option<PathBuf>,
    pub(crate) token: Option<String>,
    pub(crate) tls_ca: Option<String>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            scheduler: None,
            nthreads: None,
            name: None,
            host: "127.0.0.1".into(),
            resources: Words::default(),
            plugins: Vec::new(),
            metrics_address: "127.0.0.1:0".into(),
            no_metrics: false,
            memory_limit: "auto".into(),
            memory_target: "0.6".into(),
            memory_spill: "0.7".into(),
            memory_pause: "0.8".into(),
            memory_terminate: "0.95".into(),
            no_nanny: false,
            connection_file: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[logging]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LoggingSection {
    pub(crate) level: Option<String>,
    pub(crate) format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the current span's fields.
    Json,
}

/// A list of words given as a list or as one string (as environment
/// variables and single flags give them), e.g. `"GPU=2 MEMORY=8e9"`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "OneOrMany")]
pub(crate) struct Words(pub(crate) Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Words {
    fn from(v: OneOrMany) -> Words {
        match v {
            OneOrMany::One(s) => Words(vec![s]),
            OneOrMany::Many(v) => Words(v),
        }
    }
}

/// Merges the settings. `file` is the file named by `--config` or
/// `RUDASK_CONFIG` (it must exist); without it `rudask.toml` is read when the
/// current directory has one. `flags` serializes to a partial [`Config`]
/// holding only the flags that were given.
pub(crate) fn load(file: Option<&Path>, flags: &impl Serialize) -> Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match file {
        Some(path) if !path.is_file() => {
            return Err(Error::InvalidArgument(format!(
                "configuration file {} not found (given by --config or RUDASK_CONFIG)",
                path.display()
            )))
        }
        Some(path) => figment = figment.merge(Toml::file_exact(path)),
        None if Path::new(DEFAULT_FILE).is_file() => {
            figment = figment.merge(Toml::file_exact(DEFAULT_FILE))
        }
        None => {}
    }
    figment = figment
        .merge(Env::raw().only(&["RUST_LOG"]).map(|_| "logging.level".into()))
        .merge(Env::raw().filter_map(key_of_env))
        .merge(Serialized::defaults(flags));
    figment.extract().map_err(|e| {
        let problems: Vec<String> = e.into_iter().map(describe).collect();
        Error::InvalidArgument(format!("bad configuration: {}", problems.join("; ")))
    })
}

/// One configuration error as `KEY in FILE: problem` or `KEY from VARIABLE: problem`.
fn describe(e: figment::Error) -> String {
    let key = e.path.join(".");
    let source = match &e.metadata {
        Some(m) => match &m.source {
            Some(figment::Source::File(path)) => format!("in {}", path.display()),
            _ if m.name.contains("environment") => {
                let env = match SETTINGS.iter().find(|s| s.key == key) {
                    Some(s) if s.key == "logging.level" => "RUDASK_LOG_LEVEL or RUST_LOG",
                    Some(s) if !s.env.is_empty() => s.env,
                    _ => "the environment",
                };
                format!("from {env}")
            }
            _ => format!("from {}", m.name),
        },
        None => String::new(),
    };
    let place = [key.as_str(), source.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if place.is_empty() {
        e.kind.to_string()
    } else {
        format!("{place}: {}", e.kind)
    }
}

/// The key set by environment variable `name`, if it sets one.
fn key_of_env(name: &figment::value::UncasedStr) -> Option<figment::value::Uncased<'_>> {
    let setting = SETTINGS.iter().find(|s| s.env.eq_ignore_ascii_case(name.as_str()))?;
    Some(setting.key.into())
}

// figment's `Jail` takes closures returning its (large) error type.
#[allow(clippy::result_large_err)]
#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[derive(Serialize, Default)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        scheduler: Option<SchedulerFlags>,
    }

    #[derive(Serialize, Default)]
    struct SchedulerFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    }

    fn no_flags() -> Flags {
        Flags::default()
    }

    fn port_flag(port: u16) -> Flags {
        Flags { scheduler: Some(SchedulerFlags { port: Some(port) }) }
    }

    fn fails(r: Result<Config>) -> String {
        match r {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_then_file_then_environment_then_flags() {
        Jail::expect_with(|jail| {
            assert_eq!(load(None, &no_flags()).unwrap(), Config::default());
            jail.create_file(
                DEFAULT_FILE,
                "[scheduler]\nport = 9001\nhost = \"0.0.0.0\"\n[worker]\nresources = [\"GPU=2\", \"MEMORY=8e9\"]\n[logging]\nformat = \"json\"\n",
            )?;
            let c = load(None, &no_flags()).unwrap();
            assert_eq!((c.scheduler.port, c.scheduler.host.as_str()), (9001, "0.0.0.0"));
            assert_eq!(c.worker.resources.0, ["GPU=2", "MEMORY=8e9"]);
            assert_eq!(c.logging.format, LogFormat::Json);
            assert_eq!(
                c.scheduler.dashboard_address, "127.0.0.1:8787",
                "untouched keys keep defaults"
            );
            jail.set_env("RUDASK_SCHEDULER_PORT", "9002");
            jail.set_env("RUDASK_WORKER_RESOURCES", "GPU=1");
            jail.set_env("RUDASK_NO_DASHBOARD", "true");
            let c = load(None, &no_flags()).unwrap();
            assert_eq!(c.scheduler.port, 9002);
            assert_eq!(
                c.scheduler.host, "0.0.0.0",
                "the file still applies to what env leaves alone"
            );
            assert_eq!(c.worker.resources.0, ["GPU=1"]);
            assert!(c.scheduler.no_dashboard);
            assert_eq!(load(None, &port_flag(9003)).unwrap().scheduler.port, 9003);
            Ok(())
        });
    }

    #[test]
    fn log_level_prefers_rudask_log_level_over_rust_log() {
        Jail::expect_with(|jail| {
            jail.set_env("RUST_LOG", "debug");
            assert_eq!(load(None, &no_flags()).unwrap().logging.level.as_deref(), Some("debug"));
            jail.set_env("RUDASK_LOG_LEVEL", "warn");
            assert_eq!(load(None, &no_flags()).unwrap().logging.level.as_deref(), Some("warn"));
            Ok(())
        });
    }

    #[test]
    fn a_named_file_replaces_the_default_one_and_must_exist() {
        Jail::expect_with(|jail| {
            jail.create_file(DEFAULT_FILE, "[scheduler]\nport = 1\n")?;
            jail.create_file("other.toml", "[scheduler]\nport = 2\n")?;
            assert_eq!(load(Some(Path::new("other.toml")), &no_flags()).unwrap().scheduler.port, 2);
            let e = fails(load(Some(Path::new("missing.toml")), &no_flags()));
            assert!(e.contains("missing.toml") && e.contains("not found"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file(DEFAULT_FILE, "[scheduler]\nport = \"high\"\n")?;
            let e = fails(load(None, &no_flags()));
            assert!(e.contains("scheduler.port in ") && e.contains(DEFAULT_FILE), "{e}");
            jail.create_file(DEFAULT_FILE, "[scheduler]\nprot = 1\n")?;
            let e = fails(load(None, &no_flags()));
            assert!(e.contains("scheduler.prot in ") && e.contains(DEFAULT_FILE), "{e}");
            jail.create_file(DEFAULT_FILE, "[schedular]\n")?;
            let e = fails(load(None, &no_flags()));
            assert!(e.contains("schedular"), "{e}");
            jail.create_file(DEFAULT_FILE, "[scheduler\nport = 1\n")?;
            let e = fails(load(None, &no_flags()));
            assert!(e.contains(DEFAULT_FILE), "{e}");
            jail.create_file(DEFAULT_FILE, "")?;
            jail.set_env("RUDASK_SCHEDULER_PORT", "many");
            let e = fails(load(None, &no_flags()));
            assert!(e.contains("scheduler.port from RUDASK_SCHEDULER_PORT"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../README.md");
        let table = table(&["scheduler", "worker", "logging"]);
        assert!(readme.contains(&table), "README.md should contain this table:\n{table}");
        assert!(
            help("worker").contains("`worker.nthreads`")
                && !help("worker").contains("`scheduler.port`")
        );
    }
}
