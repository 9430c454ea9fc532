//! What a binary's man page says beyond its flags: the exit codes it can
//! return (from the one table), its files and environment, and notes kept
//! as written (preformatted, never refilled).

use upkeep_sys::error::ExitCode;

/// The one exit-status table: what each code means for every binary.
pub const EXIT_TABLE: &[(ExitCode, &str)] = &[
    (
        ExitCode::Ok,
        "done (also when there was nothing to do or nothing was found)",
    ),
    (ExitCode::Failed, "failed"),
    (
        ExitCode::Usage,
        "usage error (a bad flag, an unknown product, a --root that is not there)",
    ),
    (ExitCode::Refused, "refused by policy; nothing was changed"),
    (ExitCode::Finding, "a finding, under --strict"),
    (
        ExitCode::Waiting,
        "stopped at a step the operator does (a reboot, a setup screen): the journal keeps the place; do the step, then resume",
    ),
    (
        ExitCode::BadInput,
        "malformed input (the message names the file and line)",
    ),
    (
        ExitCode::Busy,
        "busy: another upkeep holds the lock, or a file changed meanwhile",
    ),
];

/// Environment every binary reads.
pub const COMMON_ENVIRONMENT: &[(&str, &str)] = &[
    ("DPKG_ROOT", "the system root when --root is not given (as dpkg sets it for maintainer scripts); empty means /"),
    ("UPKEEP_LOG", "log level on stderr (error, warn, info, debug); default warn"),
    ("UPKEEP_PLUGIN_DIR", "read the packaged product manifests from this directory instead"),
];

/// Files every binary may read.
pub const COMMON_FILES: &[(&str, &str)] = &[
    (
        "/etc/upkeep/plugins.d/*.toml",
        "local product manifests, overriding packaged ones by name",
    ),
    (
        "/var/lib/upkeep/",
        "upkeep's state (0700): journal records, the lock, what was seen",
    ),
];

#[derive(Debug, Clone, Copy)]
pub struct Manual {
    /// The codes this binary can return, in the table's order.
    pub exit: &'static [ExitCode],
    /// Files beyond the common ones: (path, what).
    pub files: &'static [(&'static str, &'static str)],
    /// Environment beyond the common variables: (name, what).
    pub environment: &'static [(&'static str, &'static str)],
    /// Notes shown after the options, preformatted.
    pub notes: &'static str,
}

impl Manual {
    /// The codes with their meanings, from the one table.
    pub fn exit_status(&self) -> Vec<(ExitCode, &'static str)> {
        EXIT_TABLE
            .iter()
            .filter(|(c, _)| self.exit.contains(c))
            .copied()
            .collect()
    }

    /// The text after `--help`'s options: notes, then exit status.
    pub fn after_help(&self) -> String {
        let mut s = String::new();
        if !self.notes.is_empty() {
            s.push_str(self.notes.trim_end());
            s.push_str("\n\n");
        }
        s.push_str("Exit status:\n");
        for (code, what) in self.exit_status() {
            s.push_str(&format!("  {:<3} {what}\n", code.code()));
        }
        s.trim_end().to_string()
    }
}
