//! Finding the real codex (never our own shim, never hs-run itself) and what it supports.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The string every codex-hotswap shim contains, so lookups can skip it.
pub const SHIM_MARKER: &str = "codex-hotswap-shim";

/// Where the real codex may be named, in order of precedence.
#[derive(Debug, Default, Clone)]
pub struct CodexLookup {
    /// `--codex PATH`
    pub flag: Option<PathBuf>,
    /// `CODEX_HOTSWAP_REAL_CODEX`
    pub env: Option<PathBuf>,
    /// config `real_codex`
    pub config: Option<PathBuf>,
    /// `PATH`
    pub path_var: Option<OsString>,
    /// hs-run's own executable, skipped on PATH.
    pub self_exe: Option<PathBuf>,
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when `p` is a codex-hotswap shim (a small script carrying [`SHIM_MARKER`]).
pub fn is_shim(p: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(p).and_then(|f| f.take(64 * 1024).read_to_end(&mut head)).is_ok()
        && head.windows(SHIM_MARKER.len()).any(|w| w == SHIM_MARKER.as_bytes())
}

impl CodexLookup {
    pub fn find(&self) -> Result<PathBuf> {
        for (p, how) in [
            (&self.flag, "--codex"),
            (&self.env, "CODEX_HOTSWAP_REAL_CODEX"),
            (&self.config, "\"real_codex\" in config.json"),
        ] {
            if let Some(p) = p {
                if !is_executable_file(p) {
                    bail!("the codex named by {how} ({}) is not an executable file; fix or remove that setting", p.display());
                }
                if is_shim(p) || self.is_self(p) {
                    bail!("{how} names the codex-hotswap shim ({}), not the real codex; point it at the real codex", p.display());
                }
                return Ok(p.clone());
            }
        }
        let dirs = self.path_var.as_ref().map(std::env::split_paths).into_iter().flatten();
        for dir in dirs {
            let cand = dir.join("codex");
            if is_executable_file(&cand) && !is_shim(&cand) && !self.is_self(&cand) {
                return Ok(cand);
            }
        }
        bail!(
            "cannot find the real codex on PATH (the codex-hotswap shim does not count); install it \
             (npm install -g @openai/codex) or name it with --codex PATH, CODEX_HOTSWAP_REAL_CODEX or \
             \"real_codex\" in config.json"
        )
    }

    fn is_self(&self, p: &Path) -> bool {
        match (&self.self_exe, p.canonicalize()) {
            (Some(me), Ok(c)) => me.canonicalize().is_ok_and(|m| m == c),
            _ => false,
        }
    }
}

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
    let out = std::process::Command::new(codex)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} --help", codex.display()))?;
    let no_daemon = String::from_utf8_lossy(&out.stdout).contains("--no-daemon");
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
    fn path_lookup_skips_the_shim() {
        let d = tempfile::tempdir().unwrap();
        script(&d.path().join("a"), "codex", "# codex-hotswap-shim\nexec hs-run \"$@\"");
        let real = script(&d.path().join("b"), "codex", "echo real");
        let path = std::env::join_paths([d.path().join("a"), d.path().join("b")]).unwrap();
        let l = CodexLookup { path_var: Some(path.clone()), ..Default::default() };
        assert_eq!(l.find().unwrap(), real);
        let only_shim = CodexLookup { path_var: Some(d.path().join("a").into()), ..Default::default() };
        assert!(format!("{:#}", only_shim.find().unwrap_err()).contains("cannot find the real codex"));
        let flag = CodexLookup { flag: Some(d.path().join("a/codex")), path_var: Some(path), ..Default::default() };
        assert!(format!("{:#}", flag.find().unwrap_err()).contains("names the codex-hotswap shim"));
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
