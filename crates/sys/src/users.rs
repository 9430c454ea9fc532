//! User and group names, read from the system root's `etc/passwd` and
//! `etc/group` (never from NSS: the root may be a test tree or a chroot).

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Default, Clone)]
pub struct Accounts {
    users: Vec<User>,
    groups: Vec<(String, u32)>,
    uid_names: HashMap<u32, usize>,
    gid_names: HashMap<u32, usize>,
}

impl Accounts {
    /// Reads both files; a missing file is an empty table (minimal roots
    /// have none), a malformed line is bad input naming file and line.
    pub fn load(root: &SysRoot) -> Result<Self> {
        let mut acc = Accounts::default();
        let passwd = root.path("/etc/passwd");
        for (line, fields) in read_colon_file(root, "/etc/passwd", 7)? {
            let uid = parse_id(&passwd, line, &fields[2])?;
            let gid = parse_id(&passwd, line, &fields[3])?;
            acc.uid_names.entry(uid).or_insert(acc.users.len());
            acc.users.push(User {
                name: fields[0].clone(),
                uid,
                gid,
            });
        }
        let group = root.path("/etc/group");
        for (line, mut fields) in read_colon_file(root, "/etc/group", 4)? {
            let gid = parse_id(&group, line, &fields[2])?;
            acc.gid_names.entry(gid).or_insert(acc.groups.len());
            acc.groups.push((fields.swap_remove(0), gid));
        }
        Ok(acc)
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.uid_names
            .get(&uid)
            .map(|&i| self.users[i].name.as_str())
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.gid_names.get(&gid).map(|&i| self.groups[i].0.as_str())
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn group_id(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.0 == name).map(|g| g.1)
    }

    /// Name for display: the name if the root knows it, else the number.
    pub fn user_label(&self, uid: u32) -> String {
        self.user_name(uid)
            .map_or_else(|| uid.to_string(), str::to_string)
    }

    pub fn group_label(&self, gid: u32) -> String {
        self.group_name(gid)
            .map_or_else(|| gid.to_string(), str::to_string)
    }
}

type Lines = Vec<(usize, Vec<String>)>;

fn read_colon_file(root: &SysRoot, inside: &str, min_fields: usize) -> Result<Lines> {
    let path = &root.path(inside);
    let Some(text) = crate::safe::read_to_string(root, inside, crate::safe::limit::CONFIG)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('+')
            || line.starts_with('-')
        {
            continue;
        }
        let fields: Vec<String> = line.split(':').map(str::to_string).collect();
        if fields.len() < min_fields {
            return Err(Error::bad_input(
                path,
                Some(i + 1),
                format!(
                    "expected {min_fields} colon-separated fields, found {}",
                    fields.len()
                ),
            ));
        }
        out.push((i + 1, fields));
    }
    Ok(out)
}

fn parse_id(path: &Path, line: usize, s: &str) -> Result<u32> {
    s.parse()
        .map_err(|_| Error::bad_input(path, Some(line), format!("'{s}' is not a numeric id")))
}

/// Resolves `USER[:GROUP]` against the root's tables; the group is `None`
/// when none was given (`chown USER` leaves the group as it is).
pub fn resolve_owner(acc: &Accounts, spec: &str) -> Result<(u32, Option<u32>)> {
    let (uname, gname) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = acc
        .user(uname)
        .ok_or_else(|| Error::Refused(format!("no user '{uname}' in the root's etc/passwd")))?;
    let gid = match gname {
        Some(g) => Some(
            acc.group_id(g)
                .ok_or_else(|| Error::Refused(format!("no group '{g}' in the root's etc/group")))?,
        ),
        None => None,
    };
    Ok((user.uid, gid))
}
