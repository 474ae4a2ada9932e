//! Finding the real `codex` executable, never our own shim.

use crate::config::Config;
use anyhow::{bail, Result};
use std::ffi::OsString;
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
pub struct Lookup {
    /// `--codex PATH`
    pub explicit: Option<PathBuf>,
    /// `$CODEX_HOTSWAP_REAL_CODEX`
    pub env_override: Option<OsString>,
    /// `real_codex` in config.json
    pub configured: Option<PathBuf>,
    /// `$PATH`
    pub path_var: Option<OsString>,
    /// Executables to pass over (hs-run itself, …), compared by canonical path.
    pub skip: Vec<PathBuf>,
}

impl Lookup {
    /// `real_codex` of `config`, `CODEX_HOTSWAP_REAL_CODEX` and `PATH` from `var` (the binaries
    /// pass `std::env::var_os`; tests pass a map).
    pub fn from_vars(config: &Config, var: impl Fn(&str) -> Option<OsString>) -> Lookup {
        Lookup {
            env_override: var("CODEX_HOTSWAP_REAL_CODEX"),
            configured: config.real_codex.clone(),
            path_var: var("PATH"),
            ..Lookup::default()
        }
    }

    /// `Lookup::from_vars(config, std::env::var_os)`.
    pub fn from_env(config: &Config) -> Lookup {
        Lookup::from_vars(config, |k| std::env::var_os(k))
    }
}

/// Which setting named the real codex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Config,
    Path,
}

impl Source {
    /// `flag`, `env`, `config` or `path`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Config => "config",
            Source::Path => "path",
        }
    }
}

/// The real codex: an absolute path, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub from: Source,
}

/// What to say when no setting names a codex and PATH has none.
pub const NOT_FOUND: &str =
    "codex not found on PATH: install it (npm install -g @openai/codex) or set real_codex in config.json or CODEX_HOTSWAP_REAL_CODEX";

/// Finds the real codex: `--codex`, `$CODEX_HOTSWAP_REAL_CODEX`, config `real_codex`, then the
/// first `codex` on PATH that is neither a shim nor in `skip`. `None` when nothing names one and
/// PATH has none; an error when a named one is missing or is the shim.
pub fn locate(lookup: &Lookup) -> Result<Option<Found>> {
    let named = [
        (lookup.explicit.as_deref(), Source::Flag, "--codex"),
        (lookup.env_override.as_deref().map(Path::new), Source::Env, "CODEX_HOTSWAP_REAL_CODEX"),
        (lookup.configured.as_deref(), Source::Config, "real_codex in config.json"),
    ];
    for (p, from, setting) in named {
        let Some(p) = p.filter(|p| !p.as_os_str().is_empty()) else { continue };
        if !is_executable_file(p) {
            bail!("codex not found at {} (from {setting}): no executable file there", p.display());
        }
        if is_shim(p) {
            bail!("{} (from {setting}) is the codex-hotswap shim, not the real codex", p.display());
        }
        return Ok(Some(Found { path: std::path::absolute(p)?, from }));
    }
    let skip: Vec<PathBuf> = lookup.skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    for dir in std::env::split_paths(lookup.path_var.as_deref().unwrap_or_default()) {
        let cand = dir.join("codex");
        if !is_executable_file(&cand) || is_shim(&cand) {
            continue;
        }
        if cand.canonicalize().is_ok_and(|c| skip.contains(&c)) {
            continue;
        }
        return Ok(Some(Found { path: std::path::absolute(&cand)?, from: Source::Path }));
    }
    Ok(None)
}

/// [`locate`], with "not found" as an error ([`NOT_FOUND`]).
pub fn find_real(lookup: &Lookup) -> Result<PathBuf> {
    match locate(lookup)? {
        Some(found) => Ok(found.path),
        None => bail!(NOT_FOUND),
    }
}

/// What `codex ARG` prints on stdout (stdin closed, stderr dropped): `--help`, `--version`.
pub fn stdout_of(codex: &Path, arg: &str) -> Result<String> {
    let out = std::process::Command::new(codex)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {} {arg}: {e}", codex.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The config override that keeps codex's login in `CODEX_HOME/auth.json`. With the keyring
/// store (`cli_auth_credentials_store = "keyring"`, or `"auto"` where a keyring answers) codex
/// neither reads nor keeps `auth.json`, the link to the account's vault; every wrapped codex and
/// every `hs-vault login` runs with this.
pub const FILE_STORE: [&str; 2] = ["-c", "cli_auth_credentials_store=\"file\""];

const STORE_KEY: &str = "cli_auth_credentials_store";

/// `args` with [`FILE_STORE`] in front and the user's own overrides of the credential store
/// (`-c cli_auth_credentials_store=…`, `--config=…`) taken out, since codex applies overrides in
/// order and a later one would win. Returns the new arguments and the overrides taken out, as
/// written. Stops at `--`: what follows is a prompt.
pub fn force_file_store(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = FILE_STORE.iter().map(|s| s.to_string()).collect();
    let mut dropped = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.extend(args[i..].iter().cloned());
            break;
        }
        let (value, width) = match a.as_str() {
            "-c" | "--config" => (args.get(i + 1).map(String::as_str), 2),
            _ => match a.strip_prefix("--config=").or_else(|| a.strip_prefix("-c").filter(|v| !v.is_empty())) {
                Some(v) => (Some(v), 1),
                None => (None, 1),
            },
        };
        let end = (i + width).min(args.len());
        if value.is_some_and(|v| v.split_once('=').is_some_and(|(k, _)| k.trim() == STORE_KEY)) {
            dropped.push(args[i..end].join(" "));
        } else {
            out.extend(args[i..end].iter().cloned());
        }
        i = end;
    }
    (out, dropped)
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

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_file_store_is_forced_and_other_stores_dropped() {
        let (args, dropped) = force_file_store(&strings(&["-m", "o3", "exec", "hi"]));
        assert_eq!(args, strings(&["-c", "cli_auth_credentials_store=\"file\"", "-m", "o3", "exec", "hi"]));
        assert!(dropped.is_empty());
        let (args, dropped) = force_file_store(&strings(&[
            "-c",
            "cli_auth_credentials_store=\"keyring\"",
            "-c",
            "model=\"o3\"",
            "exec",
            "--config=cli_auth_credentials_store=auto",
            "-ccli_auth_credentials_store = 'keyring'",
            "--",
            "-c",
            "cli_auth_credentials_store=keyring",
        ]));
        assert_eq!(
            args,
            strings(&["-c", "cli_auth_credentials_store=\"file\"", "-c", "model=\"o3\"", "exec", "--", "-c", "cli_auth_credentials_store=keyring"])
        );
        assert_eq!(
            dropped,
            strings(&[
                "-c cli_auth_credentials_store=\"keyring\"",
                "--config=cli_auth_credentials_store=auto",
                "-ccli_auth_credentials_store = 'keyring'"
            ])
        );
        // a dangling -c at the end is left for codex to refuse
        assert_eq!(force_file_store(&strings(&["-c"])).0, strings(&["-c", "cli_auth_credentials_store=\"file\"", "-c"]));
    }

    #[test]
    fn skips_shim_on_path() {
        let d = tempfile::tempdir().unwrap();
        exe(&d.path().join("a"), "#!/bin/sh\n# codex-hotswap-shim\n");
        let real = exe(&d.path().join("b"), "#!/bin/sh\necho real\n");
        let path = std::env::join_paths([d.path().join("a"), d.path().join("b")]).unwrap();
        let l = Lookup { path_var: Some(path.clone()), ..Default::default() };
        assert_eq!(find_real(&l).unwrap(), real);
        let l = Lookup { path_var: Some(path.clone()), skip: vec![real.clone()], ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).starts_with("codex not found on PATH"));
        assert_eq!(locate(&l).unwrap(), None);
        let shim = d.path().join("a/codex");
        let l = Lookup { explicit: Some(shim), ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).contains("is the codex-hotswap shim"));
        let missing = d.path().join("nope");
        let l = Lookup { configured: Some(missing), path_var: Some(path), ..Default::default() };
        assert!(format!("{:#}", find_real(&l).unwrap_err()).contains("(from real_codex in config.json)"));
    }

    #[test]
    fn env_then_config_then_path_each_named_as_its_source() {
        let d = tempfile::tempdir().unwrap();
        let (from_env, from_config, on_path) =
            (exe(&d.path().join("e"), ""), exe(&d.path().join("c"), ""), exe(&d.path().join("p"), ""));
        let config = Config { real_codex: Some(from_config.clone()), ..Config::default() };
        let path = d.path().join("p").into_os_string();
        let with_env = |k: &str| match k {
            "CODEX_HOTSWAP_REAL_CODEX" => Some(from_env.clone().into_os_string()),
            "PATH" => Some(path.clone()),
            _ => None,
        };
        let without_env = |k: &str| (k == "PATH").then(|| path.clone());
        let found = |l: Lookup| locate(&l).unwrap().unwrap();
        assert_eq!(found(Lookup::from_vars(&config, with_env)), Found { path: from_env.clone(), from: Source::Env });
        assert_eq!(found(Lookup::from_vars(&config, without_env)), Found { path: from_config, from: Source::Config });
        assert_eq!(found(Lookup::from_vars(&Config::default(), without_env)), Found { path: on_path, from: Source::Path });
    }

    #[test]
    fn a_relative_path_comes_back_absolute() {
        let d = tempfile::tempdir().unwrap();
        let real = exe(d.path(), "");
        // `real` spelled relative to the current folder: up to / and down again
        let up = std::env::current_dir().unwrap().components().count() - 1;
        let rel: PathBuf = std::iter::repeat_n(Path::new(".."), up).collect::<PathBuf>().join(real.strip_prefix("/").unwrap());
        assert!(rel.is_relative());
        let found = locate(&Lookup { configured: Some(rel), ..Default::default() }).unwrap().unwrap();
        assert!(found.path.is_absolute(), "{}", found.path.display());
        assert_eq!(found.path.canonicalize().unwrap(), real.canonicalize().unwrap());
    }
}
