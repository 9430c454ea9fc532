//! Warning before an upgrade undoes local work, and saying so after it did.
//!
//! A *finding* is a binary in a path a package owns that is not what that
//! package put there (its checksum differs, or its edition is not the one
//! the package ships): the next upgrade or reinstall of the package puts the
//! package's binary back. A *revert* is a finding that already happened: the
//! edition recorded last time (`ROOT/var/lib/upkeep/editions.json`) is not
//! the edition found now.

use crate::context::Context;
use crate::detect::{self, Install, Options, Report, System};
use crate::embedded;
use crate::plugin::{self, Edition, Plugin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use upkeep_pkg::version::{compare_deb, ProductVersion};
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;
use upkeep_sys::state::{self, Lock};

mod apt;
mod config;
mod findings;
mod records;

pub use apt::*;
pub use config::*;
pub use findings::*;
pub use records::*;

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    fn a_finding() -> Finding {
        Finding {
            product: "mattermost".into(),
            kind: "gitlab-omnibus".into(),
            binary: Some("/opt/gitlab/embedded/bin/mattermost".into()),
            edition: Edition::from("enterprise"),
            edition_title: "Enterprise Edition".into(),
            other_edition: true,
            package: "gitlab-ee".into(),
            package_version: Some("18.11.1-ee.0".into()),
            reason: Risk::Edition,
            reverted_by: vec![
                "an upgrade or reinstall of gitlab-ee".into(),
                "gitlab-ctl reconfigure (per Mattermost's documentation)".into(),
            ],
            advice: vec![
                "move to a standalone server".into(),
                "re-run the conversion".into(),
            ],
        }
    }

    #[test]
    fn every_finding_template_is_a_full_sentence() {
        let f = a_finding();
        let tail = "/opt/gitlab/embedded/bin/mattermost (mattermost gitlab-omnibus): it is an Enterprise Edition binary in a path that package gitlab-ee owns, and an upgrade or reinstall of gitlab-ee, or gitlab-ctl reconfigure (per Mattermost's documentation) puts the package's own binary back. What to do: move to a standalone server; or re-run the conversion.";
        assert_eq!(f.message("AT RISK:"), format!("AT RISK: {tail}"));
        assert_eq!(
            f.message("warning: upgrading gitlab-ee will revert"),
            format!("warning: upgrading gitlab-ee will revert {tail}")
        );
        assert_eq!(
            f.message("warning: a reconfigure may revert"),
            format!("warning: a reconfigure may revert {tail}")
        );
        let local = Finding {
            edition: Edition::from("team"),
            edition_title: "Team Edition".into(),
            other_edition: false,
            reason: Risk::Modified,
            advice: Vec::new(),
            reverted_by: vec!["an upgrade or reinstall of mattermost".into()],
            ..a_finding()
        };
        assert_eq!(
            local.message("AT RISK:"),
            "AT RISK: /opt/gitlab/embedded/bin/mattermost (mattermost gitlab-omnibus): it is a locally replaced binary in a path that package gitlab-ee owns, and an upgrade or reinstall of mattermost puts the package's own binary back."
        );
        let r = Revert {
            new: true,
            product: "mattermost".into(),
            binary: Some("/opt/gitlab/embedded/bin/mattermost".into()),
            was: Edition::from("enterprise"),
            now: Edition::from("team"),
            was_title: "Enterprise Edition".into(),
            now_title: "Team Edition".into(),
            seen: 0,
            package: Some("gitlab-ee".into()),
            package_version_before: Some("18.11.1-ee.0".into()),
            package_version_now: Some("18.11.2-ee.0".into()),
        };
        assert_eq!(
            r.message(),
            format!("REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition when last seen ({}), and is now Team Edition: it was put back by the upgrade of gitlab-ee from 18.11.1-ee.0 to 18.11.2-ee.0. Data is unharmed; the features of Enterprise Edition are gone until the change is made again. This is reported on every check until then, or until `upkeep-guard ack mattermost`.", state::utc_human(0))
        );
    }

    #[test]
    fn v3_stream() {
        let s = "VERSION 3\nAPT::Architecture=amd64\nDPkg::Tools::Options::x::Version=3\n\ngitlab-ee 1.0-1 all none < 2.0-1 all none /var/cache/apt/archives/gitlab-ee_2.0-1_all.deb\ngitlab-ee 1.0-1 all none < 2.0-1 all none **CONFIGURE**\nfoo:amd64 1.0 amd64 same > - - none **REMOVE**\nbar - - none < 1 all none /x.deb\n";
        let (a, bad) = parse_hook_stream(s.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].old.as_deref(), Some("1.0-1"));
        assert_eq!(
            a[0].action,
            Action::Unpack("/var/cache/apt/archives/gitlab-ee_2.0-1_all.deb".into())
        );
        assert_eq!(a[1].action, Action::Configure);
        assert_eq!(
            (a[2].name.as_str(), a[2].new.as_deref(), &a[2].action),
            ("foo", None, &Action::Remove)
        );
        assert_eq!(a[3].old, None);
    }

    #[test]
    fn v2_and_garbage() {
        let (a, _) = parse_hook_stream(b"VERSION 2\nX=1\n\ngitlab-ee 1.0 < 2.0 /x.deb\n");
        assert_eq!(a[0].new.as_deref(), Some("2.0"));
        assert!(!parse_hook_stream(b"").1.is_empty());
        assert!(!parse_hook_stream(b"garbage\n").1.is_empty());
        let (a, bad) =
            parse_hook_stream(b"VERSION 3\n\nonly three fields\nx - - none < 1 all none /x.deb\n");
        assert!(bad[0].contains("line 3"), "{bad:?}");
        assert_eq!(a.len(), 1, "the good line is kept");
        assert!(
            !parse_hook_stream(b"VERSION 3\n\na 1 all none ? 2 all none /x\n")
                .1
                .is_empty()
        );
    }
}
