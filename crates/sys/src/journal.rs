//! The one write-ahead journal. A multi-step change is a [`Record`] in
//! `ROOT/var/lib/upkeep/<journal>/`, written durably (fsync of the file
//! and of the directory) before each step changes anything, under the one
//! [`Lock`]. A record says how far the run got:
//!
//! - [`Phase::Doing`]: steps `0..done` are made and step `done` may be half
//!   made; `recover` undoes them, newest first;
//! - [`Phase::Done`]: every step is made and the change is in force (a
//!   lease until it is given back; an upgrade until its backup is released);
//! - [`Phase::Undoing`]: an undo was under way; `recover` finishes it.
//!
//! Every undo must be idempotent: after a crash it runs again, and it may
//! run for a step that never happened.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use crate::safe::{self, Dir, Keep, Kind, Resolve};
use crate::state::{self, Lock};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::Path;

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Doing,
    Done,
    Undoing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record<T> {
    pub format: u32,
    pub id: String,
    pub phase: Phase,
    pub created: u64,
    /// Steps made so far; step `done` may be half made while `Doing`.
    pub done: usize,
    /// How many steps the run has.
    pub count: usize,
    pub body: T,
}

impl<T> Record<T> {
    /// A new record, `Doing`, nothing made yet.
    pub fn new(body: T) -> Record<T> {
        let created = state::now();
        Record {
            format: FORMAT,
            id: format!("{created}-{}", std::process::id()),
            phase: Phase::Doing,
            created,
            done: 0,
            count: 0,
            body,
        }
    }
}

/// One journal: a private directory of records under upkeep's state.
pub struct Journal {
    dir: Dir,
}

impl Journal {
    /// The journal `name`, its directory created (0700) if missing.
    pub fn open(root: &SysRoot, name: &str) -> Result<Journal> {
        Ok(Journal {
            dir: state::private_dir(root, name)?,
        })
    }

    /// The journal `name` if it exists; creates nothing (the fast path of
    /// commands that usually have nothing to do).
    pub fn existing(root: &SysRoot, name: &str) -> Result<Option<Journal>> {
        Ok(state::existing_private_dir(root, name)?.map(|dir| Journal { dir }))
    }

    pub fn shown(&self) -> &Path {
        self.dir.shown()
    }

    fn file_name(id: &str) -> OsString {
        OsString::from(format!("{id}.json"))
    }

    /// Writes `rec` durably (atomic replace, 0600, directory fsynced).
    pub fn write<T: Serialize>(&self, rec: &Record<T>) -> Result<()> {
        let data = serde_json::to_vec_pretty(rec).map_err(|e| Error::Failed(e.to_string()))?;
        crate::fault::point("journal:before-write");
        self.dir
            .replace(&Self::file_name(&rec.id), &data, &Keep::private())
    }

    /// Closes a record: the change is over (made for good or undone).
    pub fn remove(&self, id: &str) -> Result<()> {
        self.dir.unlink(&Self::file_name(id))?;
        self.dir.sync()
    }

    /// Whether the journal holds anything at all (one directory read).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.dir.entries()?.is_empty())
    }

    /// Removes temporary files a crash left behind mid-write.
    pub fn clean_temps(&self) -> Result<()> {
        for (name, _) in self.dir.entries()? {
            if name.to_string_lossy().starts_with('.') {
                self.dir.unlink(&name)?;
            }
        }
        self.dir.sync()
    }

    /// Every record, oldest first. A record that does not parse is bad
    /// input naming the file and line.
    pub fn load_all<T: DeserializeOwned>(&self) -> Result<Vec<Record<T>>> {
        let mut out: Vec<Record<T>> = Vec::new();
        for (name, kind) in self.dir.entries()? {
            let text = name.to_string_lossy();
            if text.starts_with('.') || !text.ends_with(".json") || kind != Kind::File {
                continue;
            }
            let shown = self.dir.shown().join(&name);
            let Some(bytes) =
                self.dir
                    .read(Path::new(&name), Resolve::NoLinks, safe::limit::CONFIG)?
            else {
                continue;
            };
            let rec: Record<T> = serde_json::from_slice(&bytes).map_err(|e| {
                Error::bad_input(&shown, Some(e.line()), format!("not a journal record: {e}"))
            })?;
            if rec.format != FORMAT {
                return Err(Error::bad_input(
                    &shown,
                    None,
                    format!("journal format {} is not {FORMAT}", rec.format),
                ));
            }
            out.push(rec);
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Makes steps `rec.done..count` with `apply`, journaling each before
    /// it changes anything; then marks the record `Done`. If a step fails,
    /// what was made is undone at once (newest first) and the step's error
    /// is returned; if the undo fails too, the record stays for `recover`.
    pub fn run<T: Serialize>(
        &self,
        rec: &mut Record<T>,
        count: usize,
        apply: impl FnMut(&T, usize) -> Result<()>,
        undo: impl FnMut(&T, usize) -> Result<()>,
    ) -> Result<()> {
        self.run_until(rec, count, count, apply, undo)
    }

    /// As [`Journal::run`], but stops once `until` steps are made: a run in
    /// phases, each phase perhaps another process. The record stays
    /// `Doing` between phases and is marked `Done` when all `count` are made.
    pub fn run_until<T: Serialize>(
        &self,
        rec: &mut Record<T>,
        count: usize,
        until: usize,
        mut apply: impl FnMut(&T, usize) -> Result<()>,
        undo: impl FnMut(&T, usize) -> Result<()>,
    ) -> Result<()> {
        let until = until.min(count);
        rec.phase = Phase::Doing;
        rec.count = count;
        self.write(rec)?;
        crate::fault::point("journal:begun");
        while rec.done < until {
            if let Err(e) = apply(&rec.body, rec.done) {
                return Err(match self.undo(rec, undo) {
                    Ok(()) => e,
                    Err(u) => {
                        Error::Failed(format!("{e}; undoing did not finish ({u}): run recover"))
                    }
                });
            }
            rec.done += 1;
            crate::fault::point(&format!("journal:step{}", rec.done - 1));
            if rec.done < count {
                self.write(rec)?;
            }
        }
        if rec.done < count {
            return Ok(());
        }
        rec.phase = Phase::Done;
        self.write(rec)?;
        crate::fault::point("journal:done");
        Ok(())
    }

    /// Undoes every step that may have been made, newest first, carrying
    /// on past a step that fails; closes the record when all succeeded,
    /// else keeps it (`Undoing`) and returns every failure.
    pub fn undo<T: Serialize>(
        &self,
        rec: &mut Record<T>,
        mut undo: impl FnMut(&T, usize) -> Result<()>,
    ) -> Result<()> {
        if rec.phase == Phase::Doing {
            // Step `done` may be half made: undo it too.
            rec.done = (rec.done + 1).min(rec.count);
        }
        if rec.phase != Phase::Undoing {
            rec.phase = Phase::Undoing;
            self.write(rec)?;
        }
        crate::fault::point("journal:undoing");
        let mut failures = Vec::new();
        for i in (0..rec.done).rev() {
            if let Err(e) = undo(&rec.body, i) {
                failures.push(e.to_string());
            }
        }
        if !failures.is_empty() {
            return Err(Error::Failed(failures.join("; ")));
        }
        self.remove(&rec.id)
    }

    /// The one lock, taken for a run of this journal.
    pub fn lock(root: &SysRoot, wait: std::time::Duration) -> Result<Lock> {
        Lock::acquire(root, wait)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn root() -> (tempfile::TempDir, SysRoot) {
        let t = tempfile::tempdir().unwrap();
        let r = SysRoot::new(t.path());
        (t, r)
    }

    #[test]
    fn a_failing_step_undoes_what_was_made_newest_first() {
        let (_t, r) = root();
        let j = Journal::open(&r, "test").unwrap();
        let log = RefCell::new(Vec::new());
        let mut rec = Record::new(vec!["a", "b", "c"]);
        let e = j
            .run(
                &mut rec,
                3,
                |b, i| {
                    if i == 2 {
                        return Err(Error::Failed("boom".into()));
                    }
                    log.borrow_mut().push(format!("do {}", b[i]));
                    Ok(())
                },
                |b, i| {
                    log.borrow_mut().push(format!("undo {}", b[i]));
                    Ok(())
                },
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "boom");
        assert_eq!(
            *log.borrow(),
            ["do a", "do b", "undo c", "undo b", "undo a"]
        );
        assert!(j.is_empty().unwrap());
    }

    #[test]
    fn records_survive_and_load_in_order() {
        let (_t, r) = root();
        let j = Journal::open(&r, "test").unwrap();
        let mut rec = Record::new(7u32);
        j.run(&mut rec, 2, |_, _| Ok(()), |_, _| Ok(())).unwrap();
        let all: Vec<Record<u32>> = j.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].phase, Phase::Done);
        assert_eq!(all[0].done, 2);
        let mut rec = all.into_iter().next().unwrap();
        j.undo(&mut rec, |_, _| Ok(())).unwrap();
        assert!(j.is_empty().unwrap());
    }

    #[test]
    fn a_failing_undo_keeps_the_record() {
        let (_t, r) = root();
        let j = Journal::open(&r, "test").unwrap();
        let mut rec = Record::new(());
        j.run(&mut rec, 1, |_, _| Ok(()), |_, _| Ok(())).unwrap();
        let e = j
            .undo(&mut rec, |_, _| Err(Error::Failed("stuck".into())))
            .unwrap_err();
        assert!(e.to_string().contains("stuck"));
        let all: Vec<Record<()>> = j.load_all().unwrap();
        assert_eq!(all[0].phase, Phase::Undoing);
    }
}
