//! Which entry of a codex home goes where: linked to the shared store, or kept per overlay.
//! The table with the reasons is in the module documentation of [`crate::overlay`].

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;

/// The overlay's metadata file (ours, never linked, never moved).
pub const META_FILE: &str = ".hs-overlay.json";

/// The account link: a symlink to the vault's `auth.json`.
pub const AUTH_FILE: &str = "auth.json";

/// Folders every session shares. Created in the shared store when missing, then linked.
pub const SHARED_DIRS: &[&str] = &[
    "sessions",
    "archived_sessions",
    "log",
    "shell_snapshots",
    "skills",
    // Per-thread writer locks: two sessions resuming one thread must see the same locks.
    "thread-writer-locks",
    "mcp-oauth-locks",
    // Holds plugins.sync.lock: plugin syncs of all sessions take turns, as in one plain home.
    ".tmp",
    // Per-thread files the TUI writes (0.169.0).
    "tui-thread-reference-capabilities",
];

/// Files codex creates on first use. Linked even when they do not exist yet: codex 0.169.0 (and
/// SQLite) open them with O_CREAT, which creates the target of a dangling link, so they appear
/// in the shared store, never in the overlay.
pub const SHARED_FILES: &[&str] = &[
    "history.jsonl",
    "session_index.jsonl",
    // The TUI's lock for session_index.jsonl: shared with the file it guards.
    "session_index.jsonl.lock",
    "installation_id",
    "state_5.sqlite",
    "thread_history_1.sqlite",
    "logs_2.sqlite",
    "goals_1.sqlite",
    "memories_1.sqlite",
    "queue_1.sqlite",
];

/// Entries that belong to one overlay: never linked from the shared store, and thrown away at
/// destroy (locks, per-process scratch, a daemon bound to this home's account).
pub const PER_OVERLAY: &[&str] =
    &[AUTH_FILE, "auth.lock", "auth.json.lock", "tmp", "app-server-control", "app-server-daemon"];

/// SQLite sidecars: opened beside the real database file, so never linked (a link would only
/// dangle once SQLite deletes the file).
pub const SQLITE_SIDECARS: &[&str] = &["-wal", "-shm", "-journal"];

/// Files of hs-overlay itself inside an overlay: the metadata, its temp files, the swap link.
pub fn is_ours(name: &str) -> bool {
    name.starts_with(".hs-overlay") || name.starts_with("..hs-overlay")
}

pub fn is_sidecar(name: &str) -> bool {
    SQLITE_SIDECARS.iter().any(|s| name.ends_with(s) && name.len() > s.len())
}

/// The database a sidecar belongs to (`state_5.sqlite-wal` → `state_5.sqlite`).
pub fn sidecar_base(name: &str) -> Option<&str> {
    SQLITE_SIDECARS.iter().find_map(|s| name.strip_suffix(s)).filter(|b| !b.is_empty())
}

pub fn is_per_overlay(name: &str) -> bool {
    PER_OVERLAY.contains(&name)
}

/// True for names that an overlay links to the shared store.
pub fn is_linked(name: &str) -> bool {
    !is_per_overlay(name) && !is_sidecar(name) && !is_ours(name)
}

/// Creates the shared store (0700) and the [`SHARED_DIRS`] in it when missing. Returns the
/// folders it created. Existing entries are left exactly as they are.
pub fn prepare_shared(shared: &Path) -> Result<Vec<String>> {
    let mut created = Vec::new();
    if !exists_no_follow(shared)? {
        crate::fsutil::create_private_dir(shared)?;
    }
    for name in SHARED_DIRS {
        let p = shared.join(name);
        if !exists_no_follow(&p)? {
            crate::fsutil::create_private_dir(&p)?;
            created.push(name.to_string());
        }
    }
    Ok(created)
}

/// Names the overlay links: every entry of the shared store plus [`SHARED_DIRS`] and
/// [`SHARED_FILES`], minus what stays per overlay.
pub fn linked_names(shared: &Path) -> Result<BTreeSet<String>> {
    let mut names: BTreeSet<String> = SHARED_DIRS.iter().chain(SHARED_FILES).map(|s| s.to_string()).collect();
    for entry in std::fs::read_dir(shared).with_context(|| format!("cannot read {}", shared.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", shared.display()))?;
        // Names that are not UTF-8 are still linked; only our filters need text.
        let name = entry.file_name();
        match name.to_str() {
            Some(n) if !is_linked(n) => {}
            Some(n) => {
                names.insert(n.to_string());
            }
            None => {
                names.insert(name.to_string_lossy().into_owned());
            }
        }
    }
    Ok(names.into_iter().filter(|n| is_linked(n)).collect())
}

/// Links every name of [`linked_names`] from `overlay` to `shared` (absolute links).
pub fn link_shared(overlay: &Path, shared: &Path) -> Result<usize> {
    let names = linked_names(shared)?;
    for name in &names {
        let (target, link) = (shared.join(name), overlay.join(name));
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot link {} to {}", link.display(), target.display()))?;
    }
    Ok(names.len())
}

/// `symlink_metadata(p).is_ok()`, with errors other than "not found" reported.
pub fn exists_no_follow(p: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        for n in ["sessions", "config.toml", "state_5.sqlite", "history.jsonl", "AGENTS.md", "packages"] {
            assert!(is_linked(n), "{n}");
        }
        for n in [
            "auth.json",
            "auth.lock",
            "tmp",
            "state_5.sqlite-wal",
            "x.sqlite-shm",
            ".hs-overlay.json",
            "..hs-overlay.json.ab.tmp",
        ] {
            assert!(!is_linked(n), "{n}");
        }
        assert_eq!(sidecar_base("state_5.sqlite-wal"), Some("state_5.sqlite"));
        assert_eq!(sidecar_base("-wal"), None);
        assert_eq!(sidecar_base("config.toml"), None);
    }

    #[test]
    fn links_everything_shared_but_auth_and_sidecars() {
        let d = tempfile::tempdir().unwrap();
        let (shared, ov) = (d.path().join("shared"), d.path().join("ov"));
        std::fs::create_dir_all(&ov).unwrap();
        assert_eq!(prepare_shared(&shared).unwrap().len(), SHARED_DIRS.len());
        for f in ["auth.json", "config.toml", "state_5.sqlite-wal", "extra_9.sqlite", "tmp"] {
            std::fs::write(shared.join(f), "x").unwrap();
        }
        assert!(prepare_shared(&shared).unwrap().is_empty());
        let n = link_shared(&ov, &shared).unwrap();
        let names: BTreeSet<String> =
            std::fs::read_dir(&ov).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(n, names.len());
        assert!(names.contains("config.toml") && names.contains("extra_9.sqlite") && names.contains("history.jsonl"));
        assert!(!names.contains("auth.json") && !names.contains("state_5.sqlite-wal") && !names.contains("tmp"));
        for n in &names {
            assert_eq!(std::fs::read_link(ov.join(n)).unwrap(), shared.join(n));
        }
    }
}
