//! Where every file lives. Built once by each binary's `main` from the environment.

use std::path::{Path, PathBuf};

/// All locations the tools use. Everything follows `HOME` and the XDG variables, so a test
/// (or a user) can sandbox the whole tool by pointing them elsewhere.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME/codex-hotswap` (default `~/.config/codex-hotswap`).
    pub config_dir: PathBuf,
    /// `$XDG_STATE_HOME/codex-hotswap` (default `~/.local/state/codex-hotswap`).
    pub state_dir: PathBuf,
    /// The `CODEX_HOME` of the environment, when set and not one of our own runtime homes.
    pub env_codex_home: Option<PathBuf>,
}

impl Paths {
    /// Reads `HOME`, `XDG_CONFIG_HOME`, `XDG_STATE_HOME` and `CODEX_HOME` through `get`
    /// (the binaries pass `std::env::var_os`; tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> anyhow::Result<Paths> {
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = nonempty("HOME")
            .ok_or_else(|| anyhow::anyhow!("HOME is not set; codex-hotswap keeps its files under HOME"))?;
        let abs = |p: PathBuf| if p.is_absolute() { Some(p) } else { None };
        let config_base = nonempty("XDG_CONFIG_HOME").and_then(abs).unwrap_or_else(|| home.join(".config"));
        let state_base = nonempty("XDG_STATE_HOME").and_then(abs).unwrap_or_else(|| home.join(".local/state"));
        let mut paths = Paths {
            config_dir: config_base.join("codex-hotswap"),
            state_dir: state_base.join("codex-hotswap"),
            home,
            env_codex_home: None,
        };
        if let Some(ch) = nonempty("CODEX_HOME") {
            if !paths.is_runtime_path(&ch) {
                paths.env_codex_home = Some(ch);
            }
        }
        Ok(paths)
    }

    /// `Paths::from_vars(std::env::var_os)`.
    pub fn from_env() -> anyhow::Result<Paths> {
        Paths::from_vars(|k| std::env::var_os(k))
    }

    /// The account registry, owned by hs-vault.
    pub fn registry(&self) -> PathBuf {
        self.config_dir.join("accounts.json")
    }
    /// User settings, read by every tool.
    pub fn config(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }
    /// Rotation state, owned by hs-rotate.
    pub fn rotation(&self) -> PathBuf {
        self.state_dir.join("rotation.json")
    }
    /// Root of the per-session runtime homes, owned by hs-overlay.
    pub fn runtime_root(&self) -> PathBuf {
        self.state_dir.join("runtime")
    }
    /// One JSON line per account switch, appended by hs-run.
    pub fn events_log(&self) -> PathBuf {
        self.state_dir.join("events.jsonl")
    }
    /// Default vault folder for an account: `~/.codex-<name>`.
    pub fn default_vault(&self, name: &str) -> PathBuf {
        self.home.join(format!(".codex-{name}"))
    }
    /// The codex home a user had before codex-hotswap: `$CODEX_HOME` or `~/.codex`.
    pub fn default_shared_home(&self) -> PathBuf {
        self.env_codex_home.clone().unwrap_or_else(|| self.home.join(".codex"))
    }

    /// True when `p` lies under the runtime root (compared lexically).
    pub fn is_runtime_path(&self, p: &Path) -> bool {
        p.starts_with(self.runtime_root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn paths(vars: &[(&str, &str)]) -> Paths {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Paths::from_vars(|k| map.get(k).map(Into::into)).unwrap()
    }

    #[test]
    fn defaults_follow_home() {
        let p = paths(&[("HOME", "/h")]);
        assert_eq!(p.registry(), Path::new("/h/.config/codex-hotswap/accounts.json"));
        assert_eq!(p.rotation(), Path::new("/h/.local/state/codex-hotswap/rotation.json"));
        assert_eq!(p.default_vault("a"), Path::new("/h/.codex-a"));
        assert_eq!(p.default_shared_home(), Path::new("/h/.codex"));
    }

    #[test]
    fn xdg_and_codex_home() {
        let p = paths(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/c"), ("XDG_STATE_HOME", "/s"), ("CODEX_HOME", "/x")]);
        assert_eq!(p.config(), Path::new("/c/codex-hotswap/config.json"));
        assert_eq!(p.runtime_root(), Path::new("/s/codex-hotswap/runtime"));
        assert_eq!(p.default_shared_home(), Path::new("/x"));
        // a runtime home handed down by hs-run is not the user's codex home
        let p = paths(&[("HOME", "/h"), ("CODEX_HOME", "/h/.local/state/codex-hotswap/runtime/abc")]);
        assert_eq!(p.default_shared_home(), Path::new("/h/.codex"));
        // relative XDG values are ignored, as the spec says
        let p = paths(&[("HOME", "/h"), ("XDG_STATE_HOME", "rel")]);
        assert_eq!(p.state_dir, Path::new("/h/.local/state/codex-hotswap"));
    }

    #[test]
    fn no_home_is_an_error() {
        assert!(Paths::from_vars(|_| None).is_err());
    }
}
