//! The host's reconfigure, wrapped: check what it may undo, run it (only
//! the root's own copy under `--root`), report what it reverted.

use crate::detect::Options;
use crate::plugin::{self, HostSpec};
use crate::{guard, host};
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;

/// The host whose reconfigure to run: the one named, else the only host
/// a manifest declares with a control command.
fn host_spec(root: &SysRoot, name: Option<&str>) -> Result<HostSpec> {
    let plugins = plugin::load(root)?;
    let mut hosts: Vec<HostSpec> = Vec::new();
    for h in plugins
        .iter()
        .flat_map(|p| p.manifest.installs.iter())
        .filter_map(|i| i.host.clone())
        .filter(|h| h.ctl.is_some())
    {
        if !hosts.iter().any(|k| k.product == h.product) {
            hosts.push(h);
        }
    }
    let names = || {
        hosts
            .iter()
            .map(|h| h.product.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => hosts
            .iter()
            .find(|h| h.product == n)
            .cloned()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no manifest names a control command for host '{n}' (known: {})",
                    names()
                ))
            }),
        None if hosts.len() == 1 => Ok(hosts.remove(0)),
        None if hosts.is_empty() => Err(Error::Usage(
            "no manifest names a host with a control command".into(),
        )),
        None => Err(Error::Usage(format!(
            "several hosts: name one with --host ({})",
            names()
        ))),
    }
}

/// Runs the host's reconfigure with `args` and returns its exit status.
/// With `check`, warns before about what it may revert and reports after
/// what it did revert, through `say` (and the log and syslog).
pub fn reconfigure(
    root: &SysRoot,
    host_name: Option<&str>,
    args: &[String],
    check: bool,
    say: impl Fn(&str),
) -> Result<u8> {
    let spec = host_spec(root, host_name)?;
    let ctl = host::find_ctl(root, &spec).ok_or_else(|| {
        Error::Failed(format!(
            "{} not found under {}",
            spec.ctl.as_deref().unwrap_or("?"),
            root.dir().display()
        ))
    })?;
    let mut argv = spec.reconfigure.clone();
    argv.extend(args.iter().cloned());
    if check {
        match guard::observe(root, &Options::default(), true) {
            Ok(obs) => {
                for f in &obs.findings {
                    say(&f.message("warning: a reconfigure may revert"));
                }
            }
            Err(e) => say(&format!("warning: could not check before reconfigure: {e}")),
        }
    }
    let code = host::run_ctl(root, &ctl, &argv, false)?;
    if check {
        match guard::observe(root, &Options::default(), true) {
            Ok(obs) => {
                for r in &obs.reverts {
                    let msg = r.message();
                    say(&msg);
                    host::syslog(root, "upkeep-reconfigure", &msg);
                    host::log_line(root, &format!("upkeep-reconfigure: {msg}"));
                }
            }
            Err(e) => say(&format!("warning: could not check after reconfigure: {e}")),
        }
    }
    // A status beyond a byte (or a signal, 128 + n) passes as failure.
    Ok(u8::try_from(code).unwrap_or(1))
}
