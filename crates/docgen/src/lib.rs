//! Man pages and shell completions from the clap definitions and each
//! binary's [`Manual`], so `--help`, the pages and the completions never
//! drift apart. Only the tests and `UPKEEP_BLESS` use this crate; no
//! runtime binary links it.
//!
//! Every page has a real SYNOPSIS (`upkeep-lease grant`, option arguments
//! shown), the global options, EXIT STATUS, ENVIRONMENT and FILES; notes
//! are preformatted and never refilled.

use clap::{Arg, ArgAction, Command};
use std::fmt::Write as _;
use upkeep_cli::manual::{COMMON_ENVIRONMENT, COMMON_FILES};
use upkeep_cli::Manual;

/// One binary: its clap command and its manual extras.
pub struct Binary {
    pub app: Command,
    pub manual: Manual,
}

/// `(file name, roff)` for every page: one per binary and one per
/// subcommand (`upkeep-lease-grant.8`), as git does.
pub fn man_pages(binaries: Vec<Binary>, version: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in binaries {
        let mut app = b.app.disable_help_subcommand(true);
        app.build();
        let name = app.get_name().to_string();
        let globals: Vec<Arg> = app
            .get_arguments()
            .filter(|a| a.is_global_set())
            .cloned()
            .collect();
        for sub in app.get_subcommands() {
            let page = Page {
                title: format!("{name}-{}", sub.get_name()),
                synopsis_name: format!("{name} {}", sub.get_name()),
                cmd: sub,
                globals: &globals,
                manual: &b.manual,
                see_also: vec![name.clone()],
            };
            out.push((format!("{}.8", page.title), page.render(version)));
        }
        let subs: Vec<String> = app
            .get_subcommands()
            .map(|s| format!("{name}-{}", s.get_name()))
            .collect();
        let page = Page {
            title: name.clone(),
            synopsis_name: name.clone(),
            cmd: &app,
            globals: &[],
            manual: &b.manual,
            see_also: subs,
        };
        out.push((format!("{name}.8"), page.render(version)));
    }
    out
}

/// `(file name, script)` for bash, zsh and fish.
pub fn completions(binaries: Vec<Binary>) -> Vec<(String, String)> {
    use clap_complete::{generate, Shell};
    let mut out = Vec::new();
    for b in binaries {
        let mut app = b.app;
        let name = app.get_name().to_string();
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut buf = Vec::new();
            generate(shell, &mut app, name.clone(), &mut buf);
            out.push((file, String::from_utf8_lossy(&buf).into_owned()));
        }
    }
    out
}

struct Page<'a> {
    title: String,
    synopsis_name: String,
    cmd: &'a Command,
    globals: &'a [Arg],
    manual: &'a Manual,
    see_also: Vec<String>,
}

/// Escapes text for roff: backslashes, hyphens, and a leading dot or quote.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn value_names(a: &Arg) -> String {
    match a.get_value_names() {
        Some(v) => v
            .iter()
            .map(|n| format!("\\fI{}\\fR", esc(n)))
            .collect::<Vec<_>>()
            .join(" "),
        None => format!("\\fI{}\\fR", esc(&a.get_id().to_string().to_uppercase())),
    }
}

fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
}

/// `--to USER[:GROUP]`, `-h, --help`, or a positional `PATH...`.
fn spelling(a: &Arg) -> String {
    if a.is_positional() {
        let many = matches!(a.get_action(), ArgAction::Append);
        return format!("{}{}", value_names(a), if many { "..." } else { "" });
    }
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("\\fB\\-{s}\\fR"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", esc(l)));
    }
    let mut s = names.join(", ");
    if takes_value(a) {
        s.push(' ');
        s.push_str(&value_names(a));
    }
    s
}

fn visible(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
}

impl Page<'_> {
    fn render(&self, version: &str) -> String {
        let mut r = String::new();
        let _ = writeln!(
            r,
            ".TH {} 8 \"\" \"upkeep {}\" \"upkeep\"",
            esc(&self.title.to_uppercase()),
            esc(version)
        );
        let about = self
            .cmd
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = writeln!(r, ".SH NAME\n{} \\- {}", esc(&self.title), esc(&about));
        self.synopsis(&mut r);
        let long = self
            .cmd
            .get_long_about()
            .map(|a| a.to_string())
            .unwrap_or(about);
        let _ = writeln!(r, ".SH DESCRIPTION\n{}", esc(&long));
        section_args(&mut r, "OPTIONS", visible(self.cmd));
        // clap copies global flags into each subcommand when it builds.
        let own: Vec<&Arg> = self
            .cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .collect();
        let globals = if own.is_empty() {
            self.globals.iter().collect()
        } else {
            own
        };
        section_args(&mut r, "GLOBAL OPTIONS", globals.into_iter());
        self.subcommands(&mut r);
        if !self.manual.notes.is_empty() {
            let _ = writeln!(r, ".SH NOTES\n.nf");
            for line in self.manual.notes.trim_end().lines() {
                let _ = writeln!(r, "{}", esc(line));
            }
            let _ = writeln!(r, ".fi");
        }
        let _ = writeln!(r, ".SH EXIT STATUS");
        for (code, what) in self.manual.exit_status() {
            let _ = writeln!(r, ".TP\n.B {}\n{}", code.code(), esc(what));
        }
        table(
            &mut r,
            "ENVIRONMENT",
            COMMON_ENVIRONMENT.iter().chain(self.manual.environment),
        );
        table(
            &mut r,
            "FILES",
            COMMON_FILES.iter().chain(self.manual.files),
        );
        if !self.see_also.is_empty() {
            let refs: Vec<String> = self
                .see_also
                .iter()
                .map(|s| format!("\\fB{}\\fR(8)", esc(s)))
                .collect();
            let _ = writeln!(r, ".SH SEE ALSO\n{}", refs.join(", "));
        }
        r
    }

    fn synopsis(&self, r: &mut String) {
        let _ = writeln!(r, ".SH SYNOPSIS\n.B {}", esc(&self.synopsis_name));
        let mut parts: Vec<String> = Vec::new();
        for a in visible(self.cmd).filter(|a| !a.is_positional()) {
            let s = spelling(a);
            parts.push(if a.is_required_set() {
                s
            } else {
                format!("[{s}]")
            });
        }
        if self.cmd.has_subcommands() {
            parts.push("\\fICOMMAND\\fR".into());
        }
        for a in visible(self.cmd).filter(|a| a.is_positional()) {
            let s = spelling(a);
            parts.push(if a.is_required_set() {
                s
            } else {
                format!("[{s}]")
            });
        }
        for p in parts {
            let _ = writeln!(r, "{p}");
        }
    }

    fn subcommands(&self, r: &mut String) {
        if !self.cmd.has_subcommands() {
            return;
        }
        let _ = writeln!(r, ".SH COMMANDS");
        for sub in self.cmd.get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(
                r,
                ".TP\n\\fB{} {}\\fR\n{} See \\fB{}\\-{}\\fR(8).",
                esc(self.cmd.get_name()),
                esc(sub.get_name()),
                esc(&about),
                esc(self.cmd.get_name()),
                esc(sub.get_name())
            );
        }
    }
}

fn section_args<'a>(r: &mut String, title: &str, args: impl Iterator<Item = &'a Arg>) {
    let args: Vec<&Arg> = args.collect();
    if args.is_empty() {
        return;
    }
    let _ = writeln!(r, ".SH {title}");
    for a in args {
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() || !takes_value(a) {
            String::new()
        } else {
            format!(" [default: {}]", defaults.join(", "))
        };
        let _ = writeln!(r, ".TP\n{}\n{}{}", spelling(a), esc(&help), esc(&default));
    }
}

fn table<'a>(r: &mut String, title: &str, rows: impl Iterator<Item = &'a (&'a str, &'a str)>) {
    let _ = writeln!(r, ".SH {title}");
    for (name, what) in rows {
        let _ = writeln!(r, ".TP\n.I {}\n{}", esc(name), esc(what));
    }
}
