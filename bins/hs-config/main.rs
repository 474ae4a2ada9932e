//! hs-config: read and change codex-hotswap's settings (config.json).

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use shared::cli::{self, EXIT_NONE, EXIT_OK};
use shared::codex::Lookup;
use shared::config::Config;
use shared::paths::Paths;

/// Read and change codex-hotswap's settings.
///
/// Settings live in $XDG_CONFIG_HOME/codex-hotswap/config.json (default
/// ~/.config/codex-hotswap/config.json). Every setting is optional:
///   default_cooldown  how long a limit without a reset time lasts (default 1h)
///   policy            order | soonest-reset (default order)
///   shared_home       the shared codex store (default $CODEX_HOME or ~/.codex)
///   real_codex        the real codex executable (default: found on PATH, skipping the shim)
///   continue_prompt   the prompt sent when a session resumes on the next account
///   on_swap           shell command run after each switch, the switch's JSON on stdin
///   on_exhausted      wait | exit (default wait)
///   max_swaps         most switches in one run (default 8)
///   resend_prompt_after  a resumed codex TUI that has started no turn this long after its
///                     start gets the continue prompt typed for it (default 8s; off: never)
///   switch_at         usage at which an account is left at the next turn end and passed over
///                     by new sessions, per window length: off, or like 5h=95,7d=98
///                     (default 95 for windows shorter than a week, 98 for the weekly one)
///
/// `hs-config codex` prints the real codex every tool runs: $CODEX_HOTSWAP_REAL_CODEX, else
/// real_codex, else the first `codex` on PATH that is neither the codex-hotswap shim nor hs-run;
/// with --json also its version and the codex versions codex-hotswap was tested with.
///
/// Exit codes: 0 ok, 1 the setting is not set (get) or no codex was found (codex), 2 error.
#[derive(Parser, Debug)]
#[command(name = "hs-config", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print one setting (exit 1 when it is not set).
    Get { key: String },
    /// Set one setting; the value is checked before anything is written.
    Set { key: String, value: String },
    /// Remove one setting (back to its default).
    Unset { key: String },
    /// Print every setting that is set.
    Show {
        /// The whole file as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of config.json.
    Path,
    /// Print the absolute path of the real codex every tool runs (exit 1 when there is none).
    Codex {
        /// One JSON object: {"type":"codex","path":…,"from":"env|config|path","version":…,
        /// "tested":[…],"standing":…}: the version `codex --version` names (null: none), the
        /// versions codex-hotswap was tested with, and where it stands against them
        /// (tested, newer, older, between; null without a version).
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    cli::run_main("hs-config", || {
        let args = Cli::parse();
        let paths = Paths::from_env()?;
        run(args.cmd, &paths)
    })
}

/// The config as a JSON object of the settings that are set (no version).
fn as_map(c: &Config) -> serde_json::Map<String, serde_json::Value> {
    let mut m = match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    m.remove("version");
    m
}

const KEYS: &[&str] =
    &["default_cooldown", "policy", "shared_home", "real_codex", "continue_prompt", "on_swap", "on_exhausted", "max_swaps", "resend_prompt_after", "switch_at"];

fn check_key(key: &str) -> Result<()> {
    if !KEYS.contains(&key) {
        bail!("unknown setting '{key}' (known: {})", KEYS.join(", "));
    }
    Ok(())
}

fn run(cmd: Cmd, paths: &Paths) -> Result<i32> {
    match cmd {
        Cmd::Get { key } => {
            check_key(&key)?;
            match as_map(&Config::load(paths)?).get(&key) {
                Some(serde_json::Value::String(s)) => cli::print_text(&format!("{s}\n"))?,
                Some(v) => cli::print_text(&format!("{v}\n"))?,
                None => return Ok(EXIT_NONE),
            }
        }
        Cmd::Set { key, value } => {
            check_key(&key)?;
            update(paths, |m| {
                let v = if key == "max_swaps" {
                    serde_json::Value::from(value.parse::<u32>().map_err(|_| anyhow::anyhow!("max_swaps takes a whole number, not {value:?}"))?)
                } else if key == "switch_at" {
                    serde_json::to_value(shared::usage::parse_setting(&value)?)?
                } else {
                    serde_json::Value::String(value.clone())
                };
                m.insert(key.clone(), v);
                Ok(())
            })?;
        }
        Cmd::Unset { key } => {
            check_key(&key)?;
            update(paths, |m| {
                m.remove(&key);
                Ok(())
            })?;
        }
        Cmd::Show { json } => {
            let m = as_map(&Config::load(paths)?);
            if json {
                cli::print_json(&m)?;
            } else {
                let rows: Vec<Vec<String>> = m
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.as_str().map_or_else(|| v.to_string(), String::from)])
                    .collect();
                cli::print_text(&cli::table(&rows))?;
            }
        }
        Cmd::Path => cli::print_text(&format!("{}\n", paths.config().display()))?,
        Cmd::Codex { json } => return codex(paths, json),
    }
    Ok(EXIT_OK)
}

/// The real codex as hs-run finds it (so the hs-run beside this tool is passed over too).
fn codex(paths: &Paths, json: bool) -> Result<i32> {
    let hs_run = std::env::current_exe()?.with_file_name("hs-run");
    let lookup = Lookup { skip: vec![hs_run], ..Lookup::from_env(&Config::load(paths)?) };
    let Some(found) = shared::codex::locate(&lookup)? else {
        eprintln!("hs-config: {}", shared::codex::NOT_FOUND);
        return Ok(EXIT_NONE);
    };
    if json {
        // A codex that cannot be run has no version to show; hs-run says why when it starts it.
        let version = shared::codex_versions::installed(&found.path).ok().flatten();
        let tested = shared::codex_versions::tested();
        let standing = version.as_deref().and_then(|v| shared::codex_versions::standing(v, &tested));
        cli::print_json(&serde_json::json!({
            "type": "codex", "path": found.path, "from": found.from.as_str(),
            "version": version, "tested": tested, "standing": standing.map(|s| s.as_str()),
        }))?;
    } else {
        cli::print_text(&format!("{}\n", found.path.display()))?;
    }
    Ok(EXIT_OK)
}

/// Changes the settings under the config lock; the result must be a valid Config.
fn update(paths: &Paths, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> Result<()>) -> Result<()> {
    let _lock = shared::fsutil::lock_exclusive(&shared::fsutil::lock_path_for(&paths.config()))?;
    let mut m = as_map(&Config::load(paths)?);
    f(&mut m)?;
    m.insert("version".into(), shared::config::VERSION.into());
    let new: Config = serde_json::from_value(serde_json::Value::Object(m)).map_err(|e| anyhow::anyhow!("invalid value: {e}"))?;
    new.cooldown()?;
    new.resend_prompt_after()?;
    new.thresholds()?;
    shared::jsonfile::write(&paths.config(), &new)
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
