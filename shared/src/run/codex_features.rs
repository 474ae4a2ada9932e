//! What the installed codex supports (finding it is [`crate::codex::find_real`]).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Debug, Default)]
struct FeatureCache {
    entries: Vec<FeatureEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct FeatureEntry {
    path: PathBuf,
    mtime: i64,
    size: u64,
    no_daemon: bool,
}

/// Whether this codex lists `--no-daemon` in `codex --help` (0.169.0 does; older ones do not).
/// The answer is cached in `cache` per executable path, size and modification time (the npm
/// launcher takes a moment to start).
pub fn supports_no_daemon(codex: &Path, cache: &Path) -> Result<bool> {
    let real = codex.canonicalize().unwrap_or_else(|_| codex.to_path_buf());
    let meta = std::fs::metadata(&real).with_context(|| format!("cannot read {}", real.display()))?;
    let key = FeatureEntry { path: real.clone(), mtime: meta.mtime(), size: meta.size(), no_daemon: false };
    let mut cached: FeatureCache =
        std::fs::read(cache).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    if let Some(e) = cached.entries.iter().find(|e| e.path == key.path && e.mtime == key.mtime && e.size == key.size) {
        return Ok(e.no_daemon);
    }
    let no_daemon = crate::codex::stdout_of(codex, "--help")?.contains("--no-daemon");
    cached.entries.retain(|e| e.path != key.path);
    cached.entries.push(FeatureEntry { no_daemon, ..key });
    // A cache that cannot be written only costs the next start a `--help`.
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        let _ = crate::fsutil::write_atomic(cache, &bytes);
    }
    Ok(no_daemon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn no_daemon_is_detected_and_cached() {
        let d = tempfile::tempdir().unwrap();
        let counter = d.path().join("count");
        let codex = script(d.path(), "codex", &format!("echo x >> '{}'; echo '      --no-daemon'", counter.display()));
        let cache = d.path().join("cache.json");
        assert!(supports_no_daemon(&codex, &cache).unwrap());
        assert!(supports_no_daemon(&codex, &cache).unwrap());
        assert_eq!(std::fs::read_to_string(&counter).unwrap().lines().count(), 1);
        let old = script(&d.path().join("o"), "codex", "echo '  --search'");
        assert!(!supports_no_daemon(&old, &cache).unwrap());
    }
}
