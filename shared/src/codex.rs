//! Finding the real `codex` executable, never our own shim.

use anyhow::{bail, Result};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The string every codex-hotswap shim contains, so it is never mistaken for the real codex.
pub const SHIM_MARKER: &str = "codex-hotswap-shim";

/// True when `path` is a codex-hotswap shim (its first 4 KiB hold [`SHIM_MARKER`]).
pub fn is_shim(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = vec![0u8; 4096];
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let n = f.read(&mut buf).unwrap_or(0);
    buf[..n].windows(SHIM_MARKER.len()).any(|w| w == SHIM_MARKER.as_bytes())
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where the real codex comes from, in order of precedence.
#[derive(Debug, Default, Clone)]
pub struct Lookup<'a> {
    /// `--codex PATH`
    pub explicit: Option<&'a Path>,
    /// `$CODEX_HOTSWAP_REAL_CODEX`
    pub env_override: Option<&'a OsStr>,
    /// `real_codex` in config.json
    pub configured: Option<&'a Path>,
    /// `$PATH`
    pub path_var: Option<&'a OsStr>,
    /// Executables to pass over (hs-run itself, …), compared by canonical path.
    pub skip: Vec<PathBuf>,
}

/// Finds the real codex: `--codex`, `$CODEX_HOTSWAP_REAL_CODEX`, config `real_codex`, then the
/// first `codex` on PATH that is not a shim.
pub fn find_real(lookup: &Lookup) -> Result<PathBuf> {
    let named = [
        (lookup.explicit, "--codex"),
        (lookup.env_override.map(Path::new), "CODEX_HOTSWAP_REAL_CODEX"),
        (lookup.configured, "real_codex in config.json"),
    ];
    for (p, source) in named {
        let Some(p) = p.filter(|p| !p.as_os_str().is_empty()) else { continue };
        if !is_executable_file(p) {
            bail!("codex not found at {} (from {source}): no executable file there", p.display());
        }
        if is_shim(p) {
            bail!("{} (from {source}) is the codex-hotswap shim, not the real codex", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let skip: Vec<PathBuf> = lookup.skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    for dir in std::env::split_paths(lookup.path_var.unwrap_or_default()) {
        let cand = dir.join("codex");
        if !is_executable_file(&cand) || is_shim(&cand) {
            continue;
        }
        if cand.canonicalize().is_ok_and(|c| skip.contains(&c)) {
            continue;
        }
        return Ok(cand);
    }
    bail!(
        "codex not found on PATH: install it (npm install -g @openai/codex) or set real_codex in config.json or CODEX_HOTSWAP_REAL_CODEX"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("codex");
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn skips_shim_on_path() {
        let d = tempfile::tempdir().unwrap();
        exe(&d.path().join("a"), "#!/bin/sh\n# codex-hotswap-shim\n");
        let real = exe(&d.path().join("b"), "#!/bin/sh\necho real\n");
        let path = std::env::join_paths([d.path().join("a"), d.path().join("b")]).unwrap();
        let l = Lookup { path_var: Some(&path), ..Default::default() };
        assert_eq!(find_real(&l).unwrap(), real);
        let l = Lookup { path_var: Some(&path), skip: vec![real.clone()], ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).starts_with("codex not found on PATH"));
        let shim = d.path().join("a/codex");
        let l = Lookup { explicit: Some(&shim), ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).contains("is the codex-hotswap shim"));
        let missing = d.path().join("nope");
        let l = Lookup { configured: Some(&missing), path_var: Some(&path), ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).contains("(from real_codex in config.json)"));
    }
}
