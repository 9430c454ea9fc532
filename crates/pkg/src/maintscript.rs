//! Maintainer-script invocations, as dpkg (Debian Policy ch. 6) and rpm
//! (scriptlet `$1` counts) make them, turned into one [`Step`] each, so an
//! operation is keyed on what the package manager is doing, not on how it
//! says it. The model is `dpkg-maintscript-helper`: the script name comes
//! from `DPKG_MAINTSCRIPT_NAME` (or rpm's `--scriptlet`), the arguments
//! are the script's own, passed through with `-- "$@"`.

use std::fmt;

/// The four Debian maintainer scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Preinst,
    Postinst,
    Prerm,
    Postrm,
}

impl Script {
    pub fn parse(name: &str) -> Option<Script> {
        Some(match name {
            "preinst" => Script::Preinst,
            "postinst" => Script::Postinst,
            "prerm" => Script::Prerm,
            "postrm" => Script::Postrm,
            _ => return None,
        })
    }
}

/// rpm's scriptlets (`%pretrans` is Lua and never reaches upkeep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scriptlet {
    Pre,
    Post,
    Preun,
    Postun,
    Posttrans,
}

impl Scriptlet {
    pub fn parse(name: &str) -> Option<Scriptlet> {
        Some(match name {
            "pre" => Scriptlet::Pre,
            "post" => Scriptlet::Post,
            "preun" => Scriptlet::Preun,
            "postun" => Scriptlet::Postun,
            "posttrans" => Scriptlet::Posttrans,
            _ => return None,
        })
    }
}

/// What the package manager is doing when it runs the script. Versions
/// are `None` where the manager does not say (rpm passes counts only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// New package's preinst before a first install (`install`, or
    /// `install OLD NEW` over left configuration files); rpm `%pre 1`.
    PreInstall { old: Option<String> },
    /// New package's preinst before an upgrade (`upgrade OLD NEW`); rpm
    /// `%pre 2+`. Policy goes first here: a refusal keeps the old version.
    PreUpgrade {
        old: Option<String>,
        new: Option<String>,
    },
    /// Old package's prerm before an upgrade (`upgrade NEW`) or its retry
    /// (`failed-upgrade OLD NEW`, new prerm); rpm `%preun 1+`.
    PreRemoveForUpgrade { new: Option<String> },
    /// postinst `configure [OLD]`; rpm `%post`.
    Configure { old: Option<String> },
    /// An upgrade is being undone: postinst `abort-upgrade NEW`, postrm
    /// `abort-upgrade OLD NEW` or `abort-install [OLD NEW]`, preinst
    /// `abort-upgrade NEW`.
    AbortUpgrade,
    /// A first install is being undone (postrm `abort-install`).
    AbortInstall,
    /// Removal: prerm `remove`, postrm `remove`; rpm `%preun 0`/`%postun 0`.
    Remove,
    /// postrm `purge`.
    Purge,
    /// Old package's postrm after an upgrade (`upgrade NEW`), `failed-upgrade`;
    /// rpm `%postun 1+`.
    PostUpgradeOld,
    /// rpm `%posttrans`: the whole transaction is done.
    TransactionDone,
    /// Anything upkeep has nothing to do for (`triggered`, `abort-remove`,
    /// `deconfigure`, `disappear`, …); named for the log.
    Other(String),
}

/// A call that matches no documented form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn version(v: Option<&String>) -> Option<String> {
    v.filter(|s| !s.is_empty()).cloned()
}

/// A Debian maintainer script's call: its name and `"$@"`.
pub fn parse_deb(script: Script, args: &[String]) -> Result<Step, Malformed> {
    let bad = || {
        Malformed(format!(
            "{script:?} {}: not a call dpkg makes (Debian Policy 6.5)",
            args.join(" ")
        ))
    };
    let action = args.first().map(String::as_str).ok_or_else(bad)?;
    let (a1, a2) = (args.get(1), args.get(2));
    Ok(match (script, action) {
        (Script::Preinst, "install") if args.len() <= 3 => Step::PreInstall { old: version(a1) },
        (Script::Preinst, "upgrade") if args.len() == 3 || args.len() == 2 => Step::PreUpgrade {
            old: version(a1),
            new: version(a2),
        },
        (Script::Preinst, "abort-upgrade") => Step::AbortUpgrade,
        (Script::Postinst, "configure") if args.len() <= 2 => Step::Configure { old: version(a1) },
        (Script::Postinst, "abort-upgrade") => Step::AbortUpgrade,
        (
            Script::Postinst,
            a @ ("abort-remove" | "abort-deconfigure" | "triggered" | "reconfigure"),
        ) => Step::Other(a.to_string()),
        (Script::Prerm, "remove") => Step::Remove,
        (Script::Prerm, "upgrade") if args.len() == 2 => {
            Step::PreRemoveForUpgrade { new: version(a1) }
        }
        // Old dpkg passed only NEW; today OLD NEW.
        (Script::Prerm, "failed-upgrade") if args.len() <= 3 => Step::PreRemoveForUpgrade {
            new: version(a2.or(a1)),
        },
        (Script::Prerm, a @ "deconfigure") => Step::Other(a.to_string()),
        (Script::Postrm, "remove") => Step::Remove,
        (Script::Postrm, "purge") => Step::Purge,
        (Script::Postrm, "upgrade" | "failed-upgrade") => Step::PostUpgradeOld,
        (Script::Postrm, "abort-install") if args.len() == 1 => Step::AbortInstall,
        (Script::Postrm, "abort-install" | "abort-upgrade") => Step::AbortUpgrade,
        (Script::Postrm, a @ "disappear") => Step::Other(a.to_string()),
        _ => return Err(bad()),
    })
}

/// An rpm scriptlet's call: which scriptlet and its `$1`, the number of
/// instances of the package installed once the transaction is done.
pub fn parse_rpm(scriptlet: Scriptlet, count: Option<&str>) -> Result<Step, Malformed> {
    let n: Option<u32> = match count {
        Some(c) => Some(
            c.parse()
                .map_err(|_| Malformed(format!("%{scriptlet:?} {c}: $1 is not a count")))?,
        ),
        None => None,
    };
    let need = || Malformed(format!("%{scriptlet:?}: rpm passes the count as $1"));
    Ok(match scriptlet {
        Scriptlet::Pre => match n.ok_or_else(need)? {
            0 => return Err(Malformed("%pre 0: rpm never runs %pre for an erase".into())),
            1 => Step::PreInstall { old: None },
            _ => Step::PreUpgrade {
                old: None,
                new: None,
            },
        },
        // rpm does not say which version was there: the database does.
        Scriptlet::Post => match n.ok_or_else(need)? {
            0 => {
                return Err(Malformed(
                    "%post 0: rpm never runs %post for an erase".into(),
                ))
            }
            _ => Step::Configure { old: None },
        },
        Scriptlet::Preun => match n.ok_or_else(need)? {
            0 => Step::Remove,
            _ => Step::PreRemoveForUpgrade { new: None },
        },
        Scriptlet::Postun => match n.ok_or_else(need)? {
            0 => Step::Purge,
            _ => Step::PostUpgradeOld,
        },
        Scriptlet::Posttrans => Step::TransactionDone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(script: &str, args: &str) -> Result<Step, Malformed> {
        let args: Vec<String> = args.split(' ').map(str::to_string).collect();
        parse_deb(Script::parse(script).unwrap(), &args)
    }

    #[test]
    fn every_call_of_policy_chapter_6_has_a_step() {
        let cases: &[(&str, &str, Step)] = &[
            ("preinst", "install", Step::PreInstall { old: None }),
            (
                "preinst",
                "install 1.0 2.0",
                Step::PreInstall {
                    old: Some("1.0".into()),
                },
            ),
            (
                "preinst",
                "upgrade 1.0 2.0",
                Step::PreUpgrade {
                    old: Some("1.0".into()),
                    new: Some("2.0".into()),
                },
            ),
            ("preinst", "abort-upgrade 2.0", Step::AbortUpgrade),
            ("postinst", "configure", Step::Configure { old: None }),
            ("postinst", "configure ", Step::Configure { old: None }),
            (
                "postinst",
                "configure 1.0",
                Step::Configure {
                    old: Some("1.0".into()),
                },
            ),
            ("postinst", "abort-upgrade 2.0", Step::AbortUpgrade),
            (
                "postinst",
                "abort-remove",
                Step::Other("abort-remove".into()),
            ),
            (
                "postinst",
                "triggered /opt/x",
                Step::Other("triggered".into()),
            ),
            ("prerm", "remove", Step::Remove),
            (
                "prerm",
                "upgrade 2.0",
                Step::PreRemoveForUpgrade {
                    new: Some("2.0".into()),
                },
            ),
            (
                "prerm",
                "failed-upgrade 1.0 2.0",
                Step::PreRemoveForUpgrade {
                    new: Some("2.0".into()),
                },
            ),
            (
                "prerm",
                "failed-upgrade 2.0",
                Step::PreRemoveForUpgrade {
                    new: Some("2.0".into()),
                },
            ),
            ("postrm", "remove", Step::Remove),
            ("postrm", "purge", Step::Purge),
            ("postrm", "upgrade 2.0", Step::PostUpgradeOld),
            ("postrm", "failed-upgrade 1.0 2.0", Step::PostUpgradeOld),
            ("postrm", "abort-install", Step::AbortInstall),
            ("postrm", "abort-install 1.0 2.0", Step::AbortUpgrade),
            ("postrm", "abort-upgrade 1.0 2.0", Step::AbortUpgrade),
            (
                "postrm",
                "disappear other 1.0",
                Step::Other("disappear".into()),
            ),
        ];
        for (script, args, want) in cases {
            assert_eq!(&deb(script, args).unwrap(), want, "{script} {args}");
        }
    }

    #[test]
    fn calls_dpkg_never_makes_are_malformed() {
        for (script, args) in [
            ("preinst", "configure 1.0"),
            ("postinst", "upgrade 1.0 2.0"),
            ("prerm", "purge"),
            ("preinst", "upgrade 1 2 3"),
            ("postinst", ""),
        ] {
            assert!(deb(script, args).is_err(), "{script} {args}");
        }
        assert!(parse_deb(Script::Preinst, &[]).is_err());
        assert!(Script::parse("config").is_none());
    }

    #[test]
    fn rpm_counts() {
        use Scriptlet::*;
        assert_eq!(
            parse_rpm(Pre, Some("1")).unwrap(),
            Step::PreInstall { old: None }
        );
        assert_eq!(
            parse_rpm(Pre, Some("2")).unwrap(),
            Step::PreUpgrade {
                old: None,
                new: None
            }
        );
        assert_eq!(
            parse_rpm(Post, Some("2")).unwrap(),
            Step::Configure { old: None }
        );
        assert_eq!(parse_rpm(Preun, Some("0")).unwrap(), Step::Remove);
        assert_eq!(
            parse_rpm(Preun, Some("1")).unwrap(),
            Step::PreRemoveForUpgrade { new: None }
        );
        assert_eq!(parse_rpm(Postun, Some("0")).unwrap(), Step::Purge);
        assert_eq!(parse_rpm(Postun, Some("1")).unwrap(), Step::PostUpgradeOld);
        assert_eq!(parse_rpm(Posttrans, None).unwrap(), Step::TransactionDone);
        assert!(parse_rpm(Pre, Some("x")).is_err());
        assert!(parse_rpm(Pre, None).is_err());
        assert!(parse_rpm(Pre, Some("0")).is_err());
    }
}
