//! Where a task may run: a list of workers (strict or preferred) and the
//! abstract resources (`GPU`, `MEMORY`, ...) one run of it holds.

use serde::{Deserialize, Serialize};

/// Amounts closer than this count as equal, so that adding and removing
/// fractional amounts never leaves a worker short by a rounding error.
pub const RESOURCE_EPSILON: f64 = 1e-9;

/// Placement restrictions of one task. Tasks without any carry `None` in
/// [`super::TaskOptions::restrictions`] and pay nothing for this.
///
/// ```
/// use rudask_core::graph::Restrictions;
/// let r = Restrictions {
///     workers: vec!["gpu-box".into()],
///     allow_other_workers: false,
///     resources: vec![("GPU".into(), 1.0)],
/// };
/// assert!(r.validate().is_ok());
/// assert!(r.matches_worker("gpu-box", "tcp://10.0.0.1:4000"));
/// assert!(!r.matches_worker("cpu-box", "tcp://10.0.0.2:4000"));
/// assert!(r.resources_fit(&[("GPU".into(), 2.0)]));
/// assert!(!r.resources_fit(&[("CPU".into(), 8.0)]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Restrictions {
    /// Names or data addresses of the workers that may run the task; empty:
    /// any worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
    /// With `workers`: the listed workers are preferred, and other workers may
    /// run the task when none of them can (or steal it when idle). Resources
    /// are always required.
    #[serde(default)]
    pub allow_other_workers: bool,
    /// Resources one run holds, e.g. `("GPU", 1.0)`: the task runs only on
    /// workers that have them, and a worker runs at most as many such tasks at
    /// once as its totals allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<(String, f64)>,
}

impl Restrictions {
    /// Checks the restrictions make sense; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.allow_other_workers && self.workers.is_empty() {
            return Err(
                "allow_other_workers(true) needs a list of preferred workers; set it with workers([...])"
                    .into(),
            );
        }
        if let Some(w) = self.workers.iter().find(|w| w.is_empty()) {
            return Err(format!(
                "worker restriction {w:?} is empty; give worker names or addresses"
            ));
        }
        validate_resources(&self.resources, "the task needs")
    }

    /// Whether a worker with this name and data address is one of
    /// `workers`; an address may be given with or without `tcp://`.
    pub fn matches_worker(&self, name: &str, data_addr: &str) -> bool {
        let bare = data_addr.strip_prefix("tcp://");
        self.workers.iter().any(|w| w == name || w == data_addr || bare == Some(w.as_str()))
    }

    /// Whether a worker with these resource totals could run the task.
    pub fn resources_fit(&self, totals: &[(String, f64)]) -> bool {
        self.resources.iter().all(|(name, need)| {
            totals.iter().any(|(n, have)| n == name && *have + RESOURCE_EPSILON >= *need)
        })
    }
}

/// Checks a list of resource amounts: non-empty unique names and finite,
/// positive amounts. `what` starts the error message ("the worker has").
///
/// ```
/// use rudask_core::graph::validate_resources;
/// assert!(validate_resources(&[("GPU".into(), 2.0)], "the worker has").is_ok());
/// let e = validate_resources(&[("GPU".into(), -1.0)], "the worker has").unwrap_err();
/// assert!(e.starts_with("the worker has resource GPU=-1"));
/// ```
pub fn validate_resources(resources: &[(String, f64)], what: &str) -> Result<(), String> {
    for (i, (name, amount)) in resources.iter().enumerate() {
        if name.is_empty() || name.contains(['=', ',']) || name.contains(char::is_whitespace) {
            return Err(format!(
                "resource name {name:?} is invalid; use a plain name such as GPU or MEMORY"
            ));
        }
        if !amount.is_finite() || *amount <= 0.0 {
            return Err(format!(
                "{what} resource {name}={amount}; resource amounts must be finite numbers above zero"
            ));
        }
        if resources[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("resource {name} is listed twice; give each resource once"));
        }
    }
    Ok(())
}

/// Parses resources written as `GPU=2,MEMORY=10e9` or `GPU=2 MEMORY=10e9`.
///
/// ```
/// use rudask_core::graph::parse_resources;
/// assert_eq!(parse_resources("GPU=2, FPGA=0.5").unwrap(),
///            vec![("GPU".to_string(), 2.0), ("FPGA".to_string(), 0.5)]);
/// assert!(parse_resources("GPU").is_err());
/// ```
pub fn parse_resources(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for item in text.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        let Some((name, amount)) = item.split_once('=') else {
            return Err(format!(
                "resource {item:?} has no amount; write it as NAME=AMOUNT, e.g. GPU=2"
            ));
        };
        let amount: f64 = amount.trim().parse().map_err(|_| {
            format!("resource {item:?} has an amount that is not a number; write it as NAME=AMOUNT, e.g. GPU=2")
        })?;
        out.push((name.trim().to_string(), amount));
    }
    validate_resources(&out, "the worker has")?;
    Ok(out)
}
