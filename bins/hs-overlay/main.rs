//! hs-overlay: per-session codex homes that share one history and session store, with each
//! account's tokens kept in its vault.

use clap::{Parser, Subcommand};
use shared::cli::{self, EXIT_NONE, EXIT_OK};
use shared::overlay::{self, CreateOptions, Report, Setup};
use shared::paths::Paths;
use std::path::PathBuf;

/// Per-session CODEX_HOMEs ("overlays") for codex-hotswap.
///
/// An overlay is a folder under $XDG_STATE_HOME/codex-hotswap/runtime/ (0700) whose auth.json is
/// a symlink to one account's vault auth.json, so refreshed tokens always land in the vault, and
/// whose other entries link to the shared store (~/.codex, or shared_home in the config), so
/// every session shares one history, one session store and one `codex resume`. Start codex with
/// CODEX_HOME=<path> and `--no-daemon`.
///
/// Exit codes: 0 ok, 1 problems found (doctor), 2 error.
#[derive(Parser, Debug)]
#[command(
    name = "hs-overlay",
    version,
    after_help = "Examples:\n  \
    ov=$(hs-overlay create --account acc1 --owner-pid $$ | jq -r .path)\n  \
    CODEX_HOME=$ov codex --no-daemon\n  \
    hs-overlay swap \"$ov\" --account acc2\n  \
    hs-overlay destroy \"$ov\"\n  \
    hs-overlay list\n  \
    hs-overlay gc --json | jq 'select(.type==\"overlay_destroyed\") | .leftovers'"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make an overlay for an account and print one JSON line:
    /// {"type":"overlay","id","path","account","shared","vault","owner_pid","codex_version"}.
    Create {
        /// The account (as registered with hs-vault) whose auth.json the overlay links to.
        #[arg(long, value_name = "NAME")]
        account: String,
        /// The process the overlay belongs to; `gc` removes the overlay once it is gone (unless
        /// codex still runs in it). Default: the process that started hs-overlay (its parent);
        /// scripts should pass their own pid (`--owner-pid $$`).
        #[arg(long, value_name = "PID")]
        owner_pid: Option<u32>,
        /// Record this codex version (default: read from an npm-installed codex's package.json).
        #[arg(long, value_name = "VERSION")]
        codex_version: Option<String>,
    },
    /// Point an overlay at another account (atomic: a new link renamed over auth.json) and
    /// print its JSON line with "previous_account". A codex already running in it keeps its
    /// account until restarted.
    Swap {
        /// The overlay's id, or its path.
        #[arg(value_name = "ID|PATH")]
        overlay: String,
        #[arg(long, value_name = "NAME")]
        account: String,
    },
    /// Tear an overlay down and print what happened as one JSON line
    /// {"type":"overlay_destroyed",…}: entries codex created in it move to the shared store
    /// (never overwriting), the rest is kept under <state>/leftovers/<id>/ and listed.
    Destroy {
        /// The overlay's id, or its path (must be directly inside the runtime root).
        #[arg(value_name = "ID|PATH")]
        overlay: String,
        /// Destroy even while a process runs with CODEX_HOME set to the overlay.
        #[arg(long)]
        force: bool,
    },
    /// Show the overlays: account, owner pid, whether the owner is alive, age.
    List {
        /// One JSON line per overlay ({"type":"overlay_info",…}).
        #[arg(long)]
        json: bool,
    },
    /// Destroy overlays whose owner is gone (pid and start time, so a reused pid does not count)
    /// or whose creation never finished, unless codex still runs in them.
    Gc {
        /// One JSON line per destroyed overlay, then {"type":"gc",…}.
        #[arg(long)]
        json: bool,
    },
    /// Check the shared store, the runtime root and the overlays. Exit 1 when something is wrong.
    Doctor {
        /// One JSON line per check ({"type":"check","name","ok","detail"}).
        #[arg(long)]
        json: bool,
    },
}

/// An ID stays as given; a relative path is made absolute against the current folder.
fn target(arg: String) -> anyhow::Result<String> {
    if arg.contains('/') && !arg.starts_with('/') {
        let cwd = std::env::current_dir()?;
        return Ok(cwd.join(arg).to_string_lossy().into_owned());
    }
    Ok(arg)
}

fn age(seconds: Option<i64>) -> String {
    seconds.map(|s| shared::duration::human(chrono::Duration::seconds(s))).unwrap_or_else(|| "-".into())
}

fn codex_candidates(paths: &Paths) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = shared::config::Config::load(paths)?.real_codex.into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        out.extend(std::env::split_paths(&path).map(|d| d.join("codex")));
    }
    Ok(out)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let paths = Paths::from_env()?;
    let sqlite_home = std::env::var_os("CODEX_SQLITE_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let setup = Setup::load(paths.clone(), sqlite_home)?;
    match cli.cmd {
        Cmd::Create { account, owner_pid, codex_version } => {
            let codex_version =
                codex_version.or_else(|| overlay::detect_codex_version(&codex_candidates(&paths).unwrap_or_default()));
            let owner_pid = owner_pid.unwrap_or_else(std::os::unix::process::parent_id);
            let ev = overlay::create(&setup, &CreateOptions { account, owner_pid, codex_version })?;
            cli::print_json(&shared::events::Event::Overlay(ev))?;
        }
        Cmd::Swap { overlay, account } => {
            let ev = overlay::swap(&setup, &target(overlay)?, &account)?;
            cli::print_json(&shared::events::Event::Overlay(ev))?;
        }
        Cmd::Destroy { overlay, force } => {
            let report = overlay::destroy(&setup, &target(overlay)?, force)?;
            cli::print_json(&Report::OverlayDestroyed(report))?;
        }
        Cmd::List { json } => {
            let all = overlay::list(&setup)?;
            if json {
                for i in all {
                    cli::print_json(&Report::OverlayInfo(i))?;
                }
            } else {
                let mut rows =
                    vec![["ID", "ACCOUNT", "OWNER", "ALIVE", "AGE", "STATE", "PATH"].map(String::from).to_vec()];
                for i in all {
                    rows.push(vec![
                        i.id,
                        i.account.unwrap_or_else(|| "-".into()),
                        i.owner_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        if i.alive { "yes".into() } else { "no".into() },
                        age(i.age_seconds),
                        if i.in_use_by.is_empty() { i.state } else { format!("{} (in use)", i.state) },
                        i.path.display().to_string(),
                    ]);
                }
                cli::print_text(&cli::table(&rows))?;
            }
        }
        Cmd::Gc { json } => {
            let (reports, summary) = overlay::gc(&setup)?;
            if json {
                for r in reports {
                    cli::print_json(&Report::OverlayDestroyed(r))?;
                }
                cli::print_json(&Report::Gc(summary))?;
            } else {
                let mut text = String::new();
                for r in &reports {
                    text.push_str(&format!("removed {} ({})\n", r.id, r.account.as_deref().unwrap_or("-")));
                    for l in &r.leftovers {
                        text.push_str(&format!("  left over: {} -> {} ({})\n", l.entry, l.kept_at.display(), l.reason));
                    }
                }
                text.push_str(&format!("{} removed, {} kept\n", summary.collected, summary.kept));
                if let Some(e) = summary.index_error {
                    text.push_str(&format!("thread index not repaired: {e}\n"));
                }
                cli::print_text(&text)?;
            }
        }
        Cmd::Doctor { json } => {
            let checks = overlay::doctor(&setup)?;
            let ok = checks.iter().all(|c| c.ok);
            if json {
                for c in checks {
                    cli::print_json(&Report::Check(c))?;
                }
            } else {
                let text: String = checks
                    .iter()
                    .map(|c| format!("{}  {}: {}\n", if c.ok { "ok     " } else { "PROBLEM" }, c.name, c.detail))
                    .collect();
                cli::print_text(&text)?;
            }
            return Ok(if ok { EXIT_OK } else { EXIT_NONE });
        }
    }
    Ok(EXIT_OK)
}

fn main() {
    cli::run_main("hs-overlay", || run(Cli::parse()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
