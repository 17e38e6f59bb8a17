//! How much memory a worker may use, and what it does as it gets close
//! (dask's thresholds): see [`MemoryLimit`] and [`MemoryThresholds`].

use crate::error::{Error, Result};
use std::str::FromStr;

/// A worker's memory limit, as given to `rudask worker --memory-limit`.
///
/// Parsed from `auto` (this machine's memory divided by the workers on it;
/// a lone `rudask worker` gets all of it), `none` or `0` (no limit: nothing
/// is spilled, the worker never pauses), a percentage of the machine's memory
/// (`80%`), a fraction of it (`0.5`), or a size with an optional unit
/// (`4e9`, `4GB`, `4GiB`, `512MiB`, `1.5g`; `k`/`kB` = 1000, `Ki`/`KiB` =
/// 1024, and so on up to `T`). The machine's memory is its `MemTotal`, or
/// the cgroup's limit when that is lower (in a container).
///
/// ```
/// use rudask::MemoryLimit;
/// assert_eq!("4GiB".parse::<MemoryLimit>().unwrap(), MemoryLimit::Bytes(4 << 30));
/// assert_eq!("64 MB".parse::<MemoryLimit>().unwrap(), MemoryLimit::Bytes(64_000_000));
/// assert_eq!("80%".parse::<MemoryLimit>().unwrap(), MemoryLimit::Fraction(0.8));
/// assert_eq!("auto".parse::<MemoryLimit>().unwrap(), MemoryLimit::Auto);
/// assert!("lots".parse::<MemoryLimit>().is_err());
/// assert_eq!(MemoryLimit::Bytes(1000).resolve(1), Some(1000));
/// assert_eq!(MemoryLimit::None.resolve(1), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum MemoryLimit {
    /// The machine's memory divided by the number of workers on it.
    #[default]
    Auto,
    /// This many bytes.
    Bytes(u64),
    /// This fraction of the machine's memory (`0.8` for `80%`).
    Fraction(f64),
    /// No limit.
    None,
}

impl MemoryLimit {
    /// The limit in bytes for one of `workers_on_host` workers on this
    /// machine; `None` when there is no limit (or the machine's memory cannot
    /// be read for `auto` or a fraction).
    pub fn resolve(&self, workers_on_host: usize) -> Option<u64> {
        match *self {
            MemoryLimit::Auto => machine_memory().map(|m| m / workers_on_host.max(1) as u64),
            MemoryLimit::Bytes(0) | MemoryLimit::None => None,
            MemoryLimit::Bytes(n) => Some(n),
            MemoryLimit::Fraction(f) => machine_memory().map(|m| (m as f64 * f) as u64),
        }
    }
}

impl FromStr for MemoryLimit {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "memory limit {s:?}: expected auto, none, a percentage (80%), a fraction (0.5) or a size (4GiB, 4e9)"
            ))
        };
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "auto" => return Ok(MemoryLimit::Auto),
            "none" | "0" => return Ok(MemoryLimit::None),
            _ => {}
        }
        if let Some(pct) = t.strip_suffix('%') {
            let p: f64 = pct.trim().parse().map_err(|_| bad())?;
            return if p > 0.0 && p <= 100.0 {
                Ok(MemoryLimit::Fraction(p / 100.0))
            } else {
                Err(bad())
            };
        }
        let split = t.find(|c: char| c.is_ascii_alphabetic() && c != 'e').unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: f64 = number.trim().parse().map_err(|_| bad())?;
        if !n.is_finite() || n < 0.0 {
            return Err(bad());
        }
        if unit.is_empty() && n > 0.0 && n <= 1.0 && number.contains('.') {
            return Ok(MemoryLimit::Fraction(n));
        }
        let scale: f64 = match unit.trim() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "ki" | "kib" => 1024.0,
            "mi" | "mib" => 1024f64.powi(2),
            "gi" | "gib" => 1024f64.powi(3),
            "ti" | "tib" => 1024f64.powi(4),
            _ => return Err(bad()),
        };
        Ok(MemoryLimit::Bytes((n * scale) as u64))
    }
}

/// Fractions of the memory limit at which a worker acts, like dask's
/// `distributed.worker.memory.*`; `None` turns one off.
///
/// ```
/// let t = rudask::MemoryThresholds::default();
/// assert_eq!((t.target, t.spill, t.pause, t.terminate), (Some(0.6), Some(0.7), Some(0.8), Some(0.95)));
/// assert_eq!(rudask::MemoryThresholds::parse_fraction("off").unwrap(), None);
/// assert_eq!(rudask::MemoryThresholds::parse_fraction("0.5").unwrap(), Some(0.5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryThresholds {
    /// Results held in memory above this spill, least recently used first,
    /// until they are below it.
    pub target: Option<f64>,
    /// Process memory above this spills more results, until process memory
    /// is back under `target` or nothing is left to spill.
    pub spill: Option<f64>,
    /// Process memory above this pauses the worker: it starts no task and
    /// the scheduler assigns it none, until memory falls below it again.
    pub pause: Option<f64>,
    /// Process memory above this makes the worker exit, so its supervisor
    /// (`rudask worker` without `--no-nanny`) restarts it; its results are
    /// recomputed elsewhere. Without a supervisor it has no effect.
    pub terminate: Option<f64>,
}

impl Default for MemoryThresholds {
    fn default() -> Self {
        MemoryThresholds {
            target: Some(0.6),
            spill: Some(0.7),
            pause: Some(0.8),
            terminate: Some(0.95),
        }
    }
}

impl MemoryThresholds {
    /// Parses one threshold: a fraction in (0, 1], or `off`/`false`/`none`.
    pub fn parse_fraction(s: &str) -> Result<Option<f64>> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "none" => Ok(None),
            t => match t.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => Ok(Some(f)),
                _ => Err(Error::InvalidArgument(format!(
                    "memory threshold {s:?}: expected a fraction of the memory limit in (0, 1], or off"
                ))),
            },
        }
    }
}

/// This machine's memory in bytes: `MemTotal`, capped by the cgroup's limit.
pub(crate) fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(mem_total);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The `MemTotal` line of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> MemoryLimit {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_sizes_percentages_and_words() {
        assert_eq!(p("4GiB"), MemoryLimit::Bytes(4 << 30));
        assert_eq!(p("4gib"), MemoryLimit::Bytes(4 << 30));
        assert_eq!(p("64MiB"), MemoryLimit::Bytes(64 << 20));
        assert_eq!(p("4e9"), MemoryLimit::Bytes(4_000_000_000));
        assert_eq!(p("1.5G"), MemoryLimit::Bytes(1_500_000_000));
        assert_eq!(p("2 kB"), MemoryLimit::Bytes(2000));
        assert_eq!(p("3Ki"), MemoryLimit::Bytes(3072));
        assert_eq!(p("1000"), MemoryLimit::Bytes(1000));
        assert_eq!(p("1"), MemoryLimit::Bytes(1));
        assert_eq!(p("0.25"), MemoryLimit::Fraction(0.25));
        assert_eq!(p("80%"), MemoryLimit::Fraction(0.8));
        assert_eq!(p(" Auto "), MemoryLimit::Auto);
        assert_eq!(p("none"), MemoryLimit::None);
        assert_eq!(p("0"), MemoryLimit::None);
        for bad in ["", "lots", "4XB", "-1GB", "150%", "0%", "%", "1e999", "GB"] {
            let e = bad.parse::<MemoryLimit>().expect_err(bad);
            assert!(e.to_string().contains("memory limit"), "{e}");
        }
    }

    #[test]
    fn resolves_against_the_machine() {
        assert_eq!(MemoryLimit::Bytes(0).resolve(4), None);
        assert_eq!(MemoryLimit::Bytes(5).resolve(4), Some(5));
        if cfg!(target_os = "linux") {
            let m = machine_memory().expect("linux has /proc/meminfo");
            assert_eq!(MemoryLimit::Auto.resolve(1), Some(m));
            assert_eq!(MemoryLimit::Auto.resolve(4), Some(m / 4));
            assert_eq!(MemoryLimit::Fraction(0.5).resolve(3), Some(m / 2));
        }
    }

    #[test]
    fn reads_mem_total() {
        assert_eq!(mem_total("MemTotal:  1024 kB\nMemFree: 1 kB\n"), Some(1 << 20));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn parses_thresholds() {
        assert_eq!(MemoryThresholds::parse_fraction("0.7").unwrap(), Some(0.7));
        assert_eq!(MemoryThresholds::parse_fraction("OFF").unwrap(), None);
        assert_eq!(MemoryThresholds::parse_fraction("false").unwrap(), None);
        for bad in ["0", "1.5", "x", "-0.1"] {
            assert!(MemoryThresholds::parse_fraction(bad).is_err(), "{bad}");
        }
    }
}
