//! hs-run: runs codex so that a session moves to the next account when one hits its usage limit.

use anyhow::bail;
use clap::Parser;
use shared::config::{Config, OnExhausted, DEFAULT_CONTINUE_PROMPT};
use shared::paths::Paths;
use shared::run::args::{CodexArgs, Kind};
use shared::run::codex_features;
use shared::run::tools::{self, Tools};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// Run codex; when its account hits the usage limit, continue the same session on the next
/// account (hs-rotate), in a per-session CODEX_HOME (hs-overlay), seen by hs-detect.
///
/// On a limit: the account is recorded as exhausted (hs-rotate exhaust), codex is stopped (the
/// TUI with Ctrl-C, as a user would), and the same session is resumed on the next account with
/// `codex resume <SESSION_ID> <continue prompt>` (exec: `codex exec resume …`), keeping your
/// flags. A code review (`review`, `exec review`) is run again as given instead, in a new
/// session: codex cannot resume a review (a review reading its instructions from stdin, `-`,
/// is not run again). A notice says so; each switch is appended to $XDG_STATE_HOME/codex-hotswap/events.jsonl
/// and given to the "on_swap" hook of config.json on stdin.
///
/// When the next account's login is dead (codex: "Please log out and sign in again"), it is
/// marked login_needed (fix: codex-hotswap login NAME) and the session moves on to the one after.
/// When the next account refuses to resume the thread (invalid_encrypted_content, or codex's
/// "created with a different ChatGPT account"), a new session there gets the conversation so far
/// as text (at most 64 KiB) as its first prompt.
///
/// Before the limit: when a turn of the TUI ends with the account's usage at or over a
/// threshold ("switch_at" in config.json: 95% of a short window, 98% of the weekly one by
/// default), the same session moves to an account under its thresholds right then, with
/// `codex resume <SESSION_ID>` and no prompt (nothing was cut). Keys typed during a switch are
/// typed into the resumed codex once it shows its composer.
///
/// Only model sessions are wrapped: the TUI, `resume`, `fork`, `exec` and `review`. Everything
/// else (`--version`, `--help`, `login`, `mcp`, …) runs the real codex untouched.
///
/// Exit status: codex's own (128+signal when a signal ended it); 2 when hs-run cannot start
/// (codex or a sibling tool missing); 75 when every account is exhausted (or needs a login) and
/// `--on-exhausted exit` is set; 130 when the wait for an account is stopped with Ctrl-C.
///
/// The real codex: `--codex`, else $CODEX_HOTSWAP_REAL_CODEX, else "real_codex" in config.json,
/// else the first `codex` on PATH that is neither the codex-hotswap shim nor hs-run
/// (`hs-config codex` shows which).
///
/// Troubleshooting: CODEX_HOTSWAP_LOG=FILE appends what hs-run sees and does (limit events,
/// the rollout it follows, how it stops codex, each switch) to FILE.
#[derive(Parser, Debug)]
#[command(name = "hs-run", version, trailing_var_arg = true, after_help = EXAMPLES)]
struct Cli {
    /// Start on this account instead of the one `hs-rotate pick` gives.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// The real codex executable.
    #[arg(long, value_name = "PATH")]
    codex: Option<PathBuf>,
    /// The prompt sent when the session is resumed on the next account
    /// [default: config "continue_prompt", else a short "continue where you left off" that says
    /// why the account changed: its usage limit, or its login]
    #[arg(long, value_name = "TEXT", conflicts_with = "no_continue")]
    continue_prompt: Option<String>,
    /// Resume on the next account without sending a prompt (the TUI then waits for you;
    /// an `exec` session is not continued; a review runs again all the same).
    #[arg(long)]
    no_continue: bool,
    /// At most this many switches in one run [default: config "max_swaps", else 8].
    #[arg(long, value_name = "N")]
    max_swaps: Option<u32>,
    /// When every account is exhausted: wait for the earliest reset with a countdown, or exit
    /// (status 75) listing the accounts and their reset times [default: config, else wait].
    #[arg(long, value_enum, value_name = "WHAT")]
    on_exhausted: Option<Exhausted>,
    /// codex's own arguments (put `--` before them when one starts with `-` and could be
    /// taken for an hs-run option).
    #[arg(value_name = "CODEX ARGS", allow_hyphen_values = true)]
    codex_args: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Exhausted {
    Wait,
    Exit,
}

const EXAMPLES: &str = "Examples:
  hs-run                                   the codex TUI, switching accounts on a limit
  hs-run -- -m o3 \"fix the failing test\"   codex's own flags after --
  hs-run --on-exhausted exit -- exec --json \"summarize\"
  hs-run -- resume 019a…                   resume a session (it keeps switching)";

fn main() {
    // Test builds only (tests/it/fault.rs): with HS_RUN_TEST_PANIC_ON_USR2 set, SIGUSR2 panics
    // (the panic hook runs), then hs-run exits 101 as after a panic, skipping its cleanup.
    #[cfg(feature = "test-fakes")]
    if std::env::var_os("HS_RUN_TEST_PANIC_ON_USR2").is_some() {
        let mut usr2 = signal_hook::iterator::Signals::new([libc::SIGUSR2]).expect("SIGUSR2 handler");
        std::thread::spawn(move || {
            usr2.forever().next();
            let _ = std::panic::catch_unwind(|| panic!("injected test panic"));
            std::process::exit(101)
        });
    }
    shared::cli::run_main("hs-run", || {
        let cli = Cli::parse();
        let args = CodexArgs::parse(&cli.codex_args);
        let paths = Paths::from_env();
        let config = match &paths {
            Ok(p) => Config::load(p),
            Err(_) => Ok(Config::default()),
        };
        // A broken config must not break `codex --version` or `codex login`.
        let config = match (config, args.kind) {
            (Ok(c), _) => c,
            (Err(_), Kind::Passthrough) => Config::default(),
            (Err(e), _) => return Err(e),
        };
        let self_exe = std::env::current_exe().ok();
        let codex = shared::codex::find_real(&shared::codex::Lookup {
            explicit: cli.codex.clone(),
            // a `codex` on PATH that is hs-run itself (a link to it) is not the real one
            skip: self_exe.iter().cloned().collect(),
            ..shared::codex::Lookup::from_env(&config)
        })?;
        if args.kind == Kind::Passthrough {
            let err = std::process::Command::new(&codex).args(&cli.codex_args).exec();
            bail!("cannot run {}: {err}", codex.display());
        }
        // Model sessions keep their login in the runtime home's auth.json, the vault link.
        let (codex_args, dropped) = shared::codex::force_file_store(&cli.codex_args);
        for d in dropped {
            eprintln!(
                "hs-run: ignoring `{d}`: codex-hotswap runs codex with the file credential store, so each \
                 account's login stays in its vault's auth.json"
            );
        }
        let args = CodexArgs::parse(&codex_args);
        let paths = paths?;
        let here = std::env::current_dir()?;
        let no_daemon = args.kind == Kind::Tui
            && codex_features::supports_no_daemon(&codex, &shared::run::feature_cache(&paths.state_dir))?;
        let resend_prompt_after = config.resend_prompt_after()?;
        let thresholds = config.thresholds()?;
        let opts = shared::run::Options {
            cwd: shared::run::codex_cwd(&args, &here),
            args,
            codex,
            no_daemon,
            account: cli.account,
            continue_prompt: if cli.no_continue {
                None
            } else {
                Some(cli.continue_prompt.or(config.continue_prompt).unwrap_or_else(|| DEFAULT_CONTINUE_PROMPT.into()))
            },
            resend_prompt_after,
            max_swaps: cli.max_swaps.or(config.max_swaps).unwrap_or(8),
            thresholds,
            on_exhausted: match cli.on_exhausted {
                Some(Exhausted::Wait) => OnExhausted::Wait,
                Some(Exhausted::Exit) => OnExhausted::Exit,
                None => config.on_exhausted.unwrap_or_default(),
            },
            on_swap: config.on_swap,
            tools: Tools { dir: self_exe.as_deref().and_then(tools::exe_dir), path_var: std::env::var_os("PATH") },
            events_log: paths.events_log(),
            log: std::env::var_os("CODEX_HOTSWAP_LOG").filter(|v| !v.is_empty()).map(PathBuf::from),
        };
        shared::run::run(&opts)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert()
    }
}
