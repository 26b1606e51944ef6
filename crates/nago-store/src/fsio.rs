//! Atomic writes, checked reads and the study lock.

use crate::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced and
/// renamed over `path`, then the directory fsynced. A crash or a full disk leaves the old
/// file (or none) and at worst a stray `*.tmp.<pid>` file, never a truncated `path`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let name = path.file_name().ok_or_else(|| StoreError::Other {
        path: path.into(),
        message: "not a file path".into(),
    })?;
    let tmp: PathBuf = dir.join(format!(
        "{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}

/// Serialises `value` as pretty JSON with a trailing newline and writes it atomically.
pub fn atomic_write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| StoreError::Other {
        path: path.into(),
        message: e.to_string(),
    })?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

/// Reads a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String, StoreError> {
    fs::read_to_string(path).map_err(|e| StoreError::io(path, e))
}

/// The SHA-256 of `bytes`, as lowercase hex: how a proposal records which file versions it
/// saw, so that `nago-rerun --proposal` can tell whether they are still the same.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`sha256_hex`] of a file's contents, `None` when it cannot be read.
pub fn file_digest(path: &Path) -> Option<String> {
    fs::read(path).ok().map(|b| sha256_hex(&b))
}

/// Reads and parses a JSON file, checking its `schema` tag when given.
pub fn read_json<T: DeserializeOwned>(path: &Path, schema: Option<&str>) -> Result<T, StoreError> {
    let text = read_text(path)?;
    nago_space::json::parse(&text, schema).map_err(|source| StoreError::Invalid {
        path: path.into(),
        source,
    })
}

/// An exclusive lock on a study's `.lock` file, held while a process writes study-level
/// files. The operating system releases it when the process dies, so a crash never leaves
/// a study locked.
#[derive(Debug)]
pub struct StudyLock {
    _file: File,
    path: PathBuf,
}

impl StudyLock {
    /// Takes the lock without waiting; fails with [`StoreError::Locked`] if another process
    /// holds it. `who` (e.g. `nago-update`) is written into the file for the error message
    /// of whoever comes next.
    pub fn acquire(study_root: &Path, who: &str) -> Result<Self, StoreError> {
        if !study_root.join("study.json").is_file() {
            return Err(StoreError::Other {
                path: study_root.into(),
                message: "no study here (study.json is missing): create one with nago-search --preset, or give the right --run directory".into(),
            });
        }
        let path = study_root.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    path,
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(": {holder}")
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
        }
        file.set_len(0).map_err(|e| StoreError::io(&path, e))?;
        let _ = write!(file, "{who} pid {}", std::process::id());
        // The lock holder is the only writer of study-level files: what a dead writer left
        // half-made is its to clear.
        remove_stale_temp_files(study_root);
        Ok(StudyLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the `*.tmp.<pid>` files that [`atomic_write`] (or a writer of the same
/// convention) left in `dir` when its process died between creating and renaming them: those
/// whose pid is not a live process. Returns the names removed, sorted. Only the current
/// writer of `dir` should call it (the lock holder for study files, the trainer for its trial).
pub fn remove_stale_temp_files(dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    let me = std::process::id();
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((_, pid)) = name.rsplit_once(".tmp.") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == me || process_alive(pid) {
            continue;
        }
        let p = e.path();
        if removed_ok(&p) {
            removed.push(name.to_string());
        }
    }
    removed.sort();
    removed
}

/// Removes a stale temporary file or directory; whether it is gone.
fn removed_ok(p: &Path) -> bool {
    if p.is_dir() {
        fs::remove_dir_all(p).is_ok()
    } else {
        fs::remove_file(p).is_ok()
    }
}

/// Whether `pid` is a live (not zombie) process on this machine.
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Whether an I/O error means the file does not exist.
pub(crate) fn is_not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { source, .. } if source.kind() == ErrorKind::NotFound)
}
