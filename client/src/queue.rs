//! The pending queue: `<data_dir>/pending/<id>.dmp` and `<id>.json`.
//!
//! A report is in the queue once its `.json` exists; the dump is renamed into place
//! before the metadata, both written atomically (temporary file, fsync, rename). A
//! dump without metadata is an interrupted capture and is removed once it is old
//! enough not to be one in progress. The queue is bounded by count and age, the
//! oldest reports dropped first.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

/// The metadata of a pending report (`<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// The local id (a random UUID; never sent).
    pub id: String,
    /// When the dump was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Product name.
    pub product: String,
    /// Product version.
    pub version: String,
    /// Annotations to send with the report.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Whether the dump on disk was already scrubbed when it was captured.
    #[serde(default)]
    pub client_scrubbed: bool,
}

/// A report waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReport {
    /// Its metadata.
    pub meta: ReportMeta,
    /// The minidump file.
    pub dump_path: PathBuf,
}

impl PendingReport {
    /// The local id.
    pub fn id(&self) -> &str {
        &self.meta.id
    }
}

/// How long a dump without metadata may be a capture in progress.
const ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// The queue directory and its bounds.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    dir: PathBuf,
    max_count: usize,
    max_age: Duration,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Queue {
    pub(crate) fn new(data_dir: &Path, max_count: usize, max_age: Duration) -> Self {
        Queue {
            dir: data_dir.join("pending"),
            max_count,
            max_age,
        }
    }

    fn dump_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.dmp"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// A new, empty file for a dump being captured, and its id. The file has a
    /// temporary name until [`Queue::commit`].
    pub(crate) fn create_dump_file(&self) -> std::io::Result<(String, File, PathBuf)> {
        fs::create_dir_all(&self.dir)?;
        let id = uuid::Uuid::new_v4().to_string();
        let path = self.dir.join(format!(".{id}.dmp.partial"));
        let file = File::create(&path)?;
        Ok((id, file, path))
    }

    /// Makes a captured dump a pending report: fsync, rename into place, write the
    /// metadata, then apply the bounds.
    pub(crate) fn commit(&self, partial: &Path, file: &File, meta: &ReportMeta) -> Result<()> {
        if !valid_id(&meta.id) {
            return Err(Error::UnknownReport(meta.id.clone()));
        }
        file.sync_all().map_err(|e| Error::io(partial, e))?;
        let dump = self.dump_path(&meta.id);
        fs::rename(partial, &dump).map_err(|e| Error::io(&dump, e))?;
        fsutil::sync_dir(&self.dir);
        fsutil::write_json(&self.meta_path(&meta.id), meta)?;
        self.enforce_bounds()?;
        Ok(())
    }

    /// Adds a dump held in memory as a pending report.
    #[cfg(test)]
    pub(crate) fn add(&self, dump: &[u8], mut meta: ReportMeta) -> Result<String> {
        use std::io::Write;
        let (id, mut file, partial) = self
            .create_dump_file()
            .map_err(|e| Error::io(&self.dir, e))?;
        meta.id = id.clone();
        let written = file.write_all(dump);
        if let Err(e) = written {
            let _ = fs::remove_file(&partial);
            return Err(Error::io(&partial, e));
        }
        if let Err(e) = self.commit(&partial, &file, &meta) {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        Ok(id)
    }

    /// The pending reports, oldest first. Interrupted captures and reports past the
    /// bounds are removed on the way.
    pub(crate) fn list(&self) -> Result<Vec<PendingReport>> {
        self.enforce_bounds()?;
        self.scan()
    }

    fn scan(&self) -> Result<Vec<PendingReport>> {
        let mut reports = Vec::new();
        for (name, path) in fsutil::dir_entries(&self.dir)? {
            if name.starts_with('.') {
                // A temporary file: a capture or atomic write in progress, or left
                // by a process that died. Old ones are removed.
                remove_if_older(&path, ORPHAN_GRACE);
                continue;
            }
            if let Some(id) = name.strip_suffix(".json") {
                let dump_path = self.dump_path(id);
                let meta: Option<ReportMeta> = match fsutil::read_json(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "removing unreadable pending metadata");
                        None
                    }
                };
                match meta {
                    Some(meta) if meta.id == id && dump_path.is_file() => {
                        reports.push(PendingReport { meta, dump_path })
                    }
                    _ => {
                        self.remove(id)?;
                    }
                }
            } else if let Some(id) = name.strip_suffix(".dmp")
                && !self.meta_path(id).exists()
            {
                remove_if_older(&path, ORPHAN_GRACE);
            }
        }
        reports
            .sort_by(|a, b| (a.meta.created_at, &a.meta.id).cmp(&(b.meta.created_at, &b.meta.id)));
        Ok(reports)
    }

    /// Drops reports older than the age bound, then the oldest beyond the count.
    pub(crate) fn enforce_bounds(&self) -> Result<()> {
        let reports = self.scan()?;
        let now = fsutil::now();
        let max_age = time::Duration::try_from(self.max_age).unwrap_or(time::Duration::MAX);
        let mut kept = Vec::new();
        for r in reports {
            if now - r.meta.created_at > max_age {
                tracing::info!(id = %r.meta.id, "dropping pending report past the age limit");
                self.remove(&r.meta.id)?;
            } else {
                kept.push(r);
            }
        }
        let excess = kept.len().saturating_sub(self.max_count);
        for r in &kept[..excess] {
            tracing::info!(id = %r.meta.id, "dropping oldest pending report over the count limit");
            self.remove(&r.meta.id)?;
        }
        Ok(())
    }

    /// Removes a report: the metadata first (so it stops being a report), then the
    /// dump.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        if !valid_id(id) {
            return Err(Error::UnknownReport(id.to_owned()));
        }
        fsutil::remove_if_exists(&self.meta_path(id))?;
        fsutil::remove_if_exists(&self.dump_path(id))?;
        fsutil::sync_dir(&self.dir);
        Ok(())
    }

    /// Removes every pending report and every temporary file.
    pub(crate) fn clear(&self) -> Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                fsutil::remove_if_exists(&path)?;
            }
        }
        fsutil::sync_dir(&self.dir);
        Ok(())
    }
}

fn remove_if_older(path: &Path, grace: Duration) {
    let old = fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > grace)
        .unwrap_or(false);
    if old {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(age: time::Duration) -> ReportMeta {
        ReportMeta {
            id: String::new(),
            created_at: fsutil::now() - age,
            product: "p".into(),
            version: "1".into(),
            annotations: BTreeMap::new(),
            client_scrubbed: false,
        }
    }

    /// The ids of the pending reports, oldest first.
    fn ids_of(q: &Queue) -> Vec<String> {
        q.list().unwrap().into_iter().map(|r| r.meta.id).collect()
    }

    #[test]
    fn count_bound_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path(), 3, Duration::from_secs(3600));
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                q.add(
                    format!("dump{i}").as_bytes(),
                    meta(time::Duration::seconds(100 - i)),
                )
                .unwrap(),
            );
        }
        let left = ids_of(&q);
        assert_eq!(left, ids[2..].to_vec());
        let first = q.list().unwrap().remove(0);
        assert_eq!(fs::read(first.dump_path).unwrap(), b"dump2");
        // Nothing of the dropped reports is left on disk.
        assert_eq!(fs::read_dir(dir.path().join("pending")).unwrap().count(), 6);
    }

    #[test]
    fn age_bound_drops_old_reports() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path(), 10, Duration::from_secs(3600));
        let old = q.add(b"old", meta(time::Duration::hours(2))).unwrap();
        let new = q.add(b"new", meta(time::Duration::minutes(1))).unwrap();
        let left = ids_of(&q);
        assert_eq!(left, vec![new]);
        assert!(!dir.path().join(format!("pending/{old}.dmp")).exists());
    }

    #[test]
    fn interrupted_writes_are_not_reports() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path(), 10, Duration::from_secs(3600));
        let id = q.add(b"whole", meta(time::Duration::ZERO)).unwrap();
        let pending = dir.path().join("pending");
        // A capture in progress, a dump whose metadata was never written, a
        // half-written metadata temp file, and metadata without a dump.
        let (_, _file, partial) = q.create_dump_file().unwrap();
        fs::write(pending.join("aaaa.dmp"), b"no meta").unwrap();
        fs::write(pending.join(".bbbb.json.1.tmp"), b"{\"id\":").unwrap();
        fs::write(pending.join("cccc.json"), b"{}").unwrap();
        let reports = q.list().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].meta.id, id);
        // Recent temporary files stay (they may be in use); broken metadata goes.
        assert!(partial.exists());
        assert!(pending.join("aaaa.dmp").exists());
        assert!(!pending.join("cccc.json").exists());
    }

    #[test]
    fn remove_rejects_path_ids() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path(), 10, Duration::from_secs(3600));
        assert!(matches!(q.remove("../x"), Err(Error::UnknownReport(_))));
    }
}
