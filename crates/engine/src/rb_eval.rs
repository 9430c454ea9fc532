//! What gitlab.rb means, as Ruby computes it: the texts are evaluated by
//! the recorder (`ruby_config_recorder.rb`, embedded in the binaries) the way
//! Omnibus loads gitlab.rb, and every setting comes back as JSON.
//!
//! Which Ruby runs, and where (see `Ruby::find`):
//! - On `/`: the host's own Ruby (`/opt/gitlab/embedded/bin/ruby` from the
//!   manifest), else `ruby` on PATH.
//! - Under `--root DIR` with the host's Ruby inside the root: that Ruby runs
//!   *inside* the root (`chroot DIR RUBY`), never on the live machine.
//! - Under `--root DIR` without one: the machine's `ruby` on PATH starts,
//!   loads only its own JSON library, then chroots itself into DIR before
//!   any gitlab.rb code runs (the text comes on stdin), so the file's code
//!   sees the root and nothing of the live machine.
//!   Both chroots need root; when they are impossible the evaluation fails
//!   and callers fall back to a static reading, saying so.

use crate::plugin::HostSpec;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;

pub const RECORDER: &str = include_str!("ruby_config_recorder.rb");
const MARKER: &str = "\n@@upkeep-recorder@@\n";

/// How to run Ruby for a root.
#[derive(Debug, Clone)]
pub struct Ruby {
    /// The program to execute (`chroot` or a Ruby).
    program: PathBuf,
    /// Arguments before `-e SCRIPT`.
    pre: Vec<String>,
    /// The directory the recorder chroots into ("/" for none).
    chroot_to: String,
    /// For messages: which Ruby and where it runs.
    pub describe: String,
}

impl Ruby {
    /// The Ruby to evaluate the root's gitlab.rb with, as the module
    /// documentation says; `None` when there is none at all.
    pub fn find(root: &SysRoot, host: &HostSpec) -> Option<Ruby> {
        let inside = host.ruby.as_deref();
        if root.is_host() {
            // Never a Ruby a lease holder could have written.
            let program = inside
                .and_then(|r| crate::host::runnable_in_root(root, r))
                .or_else(|| crate::host::on_path(root, std::ffi::OsStr::new("ruby")))?;
            return Some(Ruby {
                describe: program.display().to_string(),
                program,
                pre: Vec::new(),
                chroot_to: "/".into(),
            });
        }
        if let Some(r) = inside.filter(|r| crate::host::runnable_in_root(root, r).is_some()) {
            // The machine's chroot, also when PATH lacks the sbin directories.
            let chroot = which::which("chroot")
                .or_else(|_| which::which_in("chroot", Some("/usr/sbin:/usr/bin:/sbin:/bin"), "/"))
                .ok()?;
            return Some(Ruby {
                program: chroot,
                pre: vec![root.dir().display().to_string(), r.to_string()],
                chroot_to: "/".into(),
                describe: format!("{r} inside {} (chroot)", root.dir().display()),
            });
        }
        let program = which::which("ruby").ok()?;
        Some(Ruby {
            describe: format!(
                "{} (this machine's; chrooted into {} before the config runs)",
                program.display(),
                root.dir().display()
            ),
            program,
            pre: Vec::new(),
            chroot_to: root.dir().display().to_string(),
        })
    }

    /// `ruby` on PATH with no chroot: for tests and tools that evaluate
    /// text that belongs to no root.
    pub fn plain() -> Option<Ruby> {
        let program = which::which("ruby").ok()?;
        Some(Ruby {
            describe: program.display().to_string(),
            program,
            pre: Vec::new(),
            chroot_to: "/".into(),
        })
    }

    /// Evaluates every text in one Ruby process.
    pub fn evaluate(&self, texts: &[&str]) -> Result<Vec<Evaluated>> {
        let input = serde_json::to_vec(texts).map_err(|e| Error::Failed(e.to_string()))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.pre)
            .arg("-e")
            .arg(RECORDER)
            .arg(&self.chroot_to)
            .env("LC_ALL", "C.UTF-8")
            .current_dir("/");
        let secs = 60 + texts.len() as u64 / 10;
        let out = upkeep_sys::process::run_with_timeout(
            &mut cmd,
            Some(&input),
            Duration::from_secs(secs),
        )
        .map_err(|e| Error::Failed(format!("cannot run {}: {e}", self.describe)))?
        .ok_or_else(|| {
            Error::Failed(format!(
                "{} did not finish evaluating the config within {secs} s",
                self.describe
            ))
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some((_, json)) = stdout.rsplit_once(MARKER) else {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Failed(format!(
                "{} could not evaluate the config: {}",
                self.describe,
                err.lines().next().unwrap_or("it printed no result").trim()
            )));
        };
        let v: Vec<Value> = serde_json::from_str(json.trim())
            .map_err(|e| Error::Failed(format!("the recorder's output is not JSON: {e}")))?;
        if v.len() != texts.len() {
            return Err(Error::Failed("the recorder lost a result".into()));
        }
        Ok(v.into_iter().map(Evaluated::from_json).collect())
    }
}

/// One text's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    Loaded {
        /// Every top-level name and what it holds.
        settings: Map<String, Value>,
        /// Line of the last assignment of each key (`{"name": {"key": N}}`)
        /// or of a method-style setting (`{"name": N}`).
        lines: Map<String, Value>,
    },
    /// Ruby could not load it: a syntax error or an exception.
    Failed { error: String, line: Option<usize> },
}

impl Evaluated {
    fn from_json(v: Value) -> Evaluated {
        let obj = |k: &str| {
            v.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        if v.get("ok") == Some(&Value::Bool(true)) {
            Evaluated::Loaded {
                settings: obj("settings"),
                lines: obj("lines"),
            }
        } else {
            Evaluated::Failed {
                error: v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
                line: v.get("line").and_then(Value::as_u64).map(|l| l as usize),
            }
        }
    }

    /// The settings, or bad input (65) naming `path` and the line.
    pub fn settings(&self, path: &Path) -> Result<&Map<String, Value>> {
        match self {
            Evaluated::Loaded { settings, .. } => Ok(settings),
            Evaluated::Failed { error, line } => Err(Error::bad_input(
                path,
                *line,
                format!("Ruby cannot load it: {error}"),
            )),
        }
    }

    /// Line of the last assignment of `name[key]`, or of `name 'arg'`.
    pub fn line(&self, name: &str, key: Option<&str>) -> Option<usize> {
        let Evaluated::Loaded { lines, .. } = self else {
            return None;
        };
        let v = lines.get(name)?;
        let v = match key {
            Some(k) => v.get(k)?,
            None => v,
        };
        v.as_u64().map(|l| l as usize)
    }
}

/// Ruby's truth: everything but `false` and `nil`.
pub fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}
