//! hs-run: one codex session that moves to the next account when the current one hits its
//! usage limit.
//!
//! ```text
//! hs-rotate pick ─→ hs-overlay create ─→ codex (CODEX_HOME = overlay) ─┬─ output → user
//!                                                                      ├─ output → hs-detect ─┐
//!                                                                      └─ rollout (followed) ─┴→ limit
//! limit → hs-rotate exhaust → stop codex → hs-rotate next → hs-overlay swap → codex resume <id> <prompt>
//! turn end near the limit → stop codex → hs-rotate next --under-threshold → hs-overlay swap → codex resume <id>
//! ```
//!
//! When to switch, and how, is decided in [`policy`] (both triggers); keys typed during a switch
//! are kept for the resumed codex ([`keys`]).
//!
//! A code review is run again instead of resumed ([`args::CodexArgs::reruns`]): the same command
//! line, on the next account, a new session (nothing of the old one is redrawn or followed).
//!
//! Detection, two sources:
//! - codex's output goes to `hs-detect` children, as the tool contract says: one for the TUI's
//!   terminal bytes (restarted at the new size after a resize, since its `--size` is fixed), or
//!   one each for exec's stdout (`json` with `--json`) and stderr, so the two streams stay apart.
//! - the session's rollout is followed in-process ([`crate::rollout::Follower`]), because only
//!   here is it known which file codex holds open and where it ended before this codex started.
//!   The file is the one codex (or, with the npm launcher on Node 20, its child) has open for
//!   writing, else the newest rollout of this folder that started after the launch. A resumed
//!   session's file is followed from its old end (a byte offset, no clock), so its old limit
//!   record never counts; any other file counts records stamped at or after the launch.
//!
//! One limit gives one switch: the first limit event of a run decides; later ones of that run
//! only refine its reset time (the rollout's 100% window is exact, the screen says "8:13 PM").
//! A resumed TUI redraws the old conversation, old banner included, and hs-detect reports it
//! again: a screen/text limit that matches one already handled (same text apart from wrapping,
//! or same kind and reset minute) is a redraw. Limits already recorded in a session the user
//! resumes or forks count as handled. hs-detect's SIGUSR1 mark is not used: it would land at an
//! arbitrary point of the piped stream, and nothing tells when the redraw is over.
//!
//! The account a session lands on may not take it ([`recover`]): a dead login marks the account
//! `login_needed` (`hs-rotate login-needed`) and moves the session on like a limit does (each
//! account at most once per hs-run); a resume refused on the new account starts a new session
//! there whose first prompt is the old conversation as text ([`carry`]), logged as a `swap` with
//! `how: carried_over` once that codex ends (then its session id is known).
//!
//! Stopping codex for a switch: the TUI gets Ctrl-C twice (codex 0.169.0 then prints "Shutting
//! down", restores the terminal and keeps its rollout), a third time for a non-empty composer,
//! SIGTERM to its process group after 4 s and SIGKILL after 6 s (then hs-run resets the terminal
//! modes codex left on). `exec` ends by itself after a limit (exit 1); TERM after 5 s.

pub mod args;
pub mod carry;
pub mod codex_features;
pub mod keys;
pub mod policy;
pub mod recover;
pub mod rollout_watch;
mod supervise;
pub mod tools;

use crate::config::OnExhausted;
use crate::events::{Event, LimitEvent, LimitKind, Source, SwapEvent, SwapHow};
use crate::pty::{self, RawGuard, SignalPipe};
use anyhow::{Context, Result};
use args::{CodexArgs, Kind};
use recover::TroubleKind;
use chrono::{DateTime, Local, Utc};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tools::Tools;

/// Exit code when every account is exhausted and `--on-exhausted exit` was chosen
/// (EX_TEMPFAIL: try again later).
pub const EXIT_EXHAUSTED: i32 = 75;
/// Exit code when the user stopped the wait for an account with Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything hs-run was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub args: CodexArgs,
    /// The real codex.
    pub codex: PathBuf,
    /// Add `--no-daemon` to TUI runs (this codex supports it).
    pub no_daemon: bool,
    /// Start on this account instead of `hs-rotate pick`.
    pub account: Option<String>,
    /// The prompt sent with `resume`; `None` for `--no-continue`.
    pub continue_prompt: Option<String>,
    /// Type the continue prompt into a resumed TUI that started no turn this long after its
    /// start (config `resend_prompt_after`; `None`: never).
    pub resend_prompt_after: Option<Duration>,
    pub max_swaps: u32,
    /// Usage thresholds for leaving an account at a turn boundary (config `switch_at`).
    pub thresholds: crate::usage::Thresholds,
    pub on_exhausted: OnExhausted,
    /// Shell command run after each switch with the switch's JSON on stdin.
    pub on_swap: Option<String>,
    pub tools: Tools,
    /// Where codex works (`-C` resolved against hs-run's folder).
    pub cwd: PathBuf,
    pub events_log: PathBuf,
    /// Where to append what hs-run sees and does, for troubleshooting (`CODEX_HOTSWAP_LOG`).
    pub log: Option<PathBuf>,
}

/// The troubleshooting log: one timestamped line per thing hs-run saw or did. Never a token:
/// only events, paths, pids and decisions.
pub struct Log(Option<std::sync::Mutex<std::fs::File>>);

impl Log {
    pub fn open(path: Option<&Path>) -> Result<Log> {
        let Some(p) = path else { return Ok(Log(None)) };
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("cannot open the log {}", p.display()))?;
        Ok(Log(Some(std::sync::Mutex::new(f))))
    }

    pub fn line(&self, msg: impl std::fmt::Display) {
        if let Some(f) = &self.0 {
            let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{now} [{}] {msg}", std::process::id());
            }
        }
    }
}

/// The user's terminal (or not) and the signals hs-run listens to.
pub struct Term {
    pub signals: SignalPipe,
    raw: Option<RawGuard>,
    pub stdin_open: bool,
    /// stderr is a terminal: notices and the countdown may redraw a line.
    stderr_tty: bool,
}

impl Term {
    pub fn new() -> Result<Term> {
        Ok(Term {
            signals: SignalPipe::new(&pty::HANDLED_SIGNALS)?,
            raw: None,
            stdin_open: true,
            stderr_tty: pty::is_terminal(std::io::stderr().as_fd()),
        })
    }

    /// Raw mode for the whole interactive session (once; restored on drop and on panic).
    pub fn enter_raw(&mut self) -> Result<()> {
        if self.raw.is_none() {
            self.raw = Some(RawGuard::enter(std::io::stdin().as_fd())?);
        }
        Ok(())
    }

    pub fn is_raw(&self) -> bool {
        self.raw.is_some()
    }

    /// One line on stderr, between codex runs.
    pub fn notice(&self, msg: &str) {
        let eol = if self.is_raw() { "\r\n" } else { "\n" };
        let _ = write!(std::io::stderr().lock(), "codex-hotswap: {msg}{eol}");
    }

    /// A TERM, HUP or INT that arrived while no codex ran: 128+signal.
    fn pending_quit(&self) -> Option<i32> {
        self.signals.take().into_iter().find(|s| matches!(*s, libc::SIGINT | libc::SIGTERM | libc::SIGHUP)).map(|s| 128 + s)
    }

    /// In raw mode, between two codex runs: reads what the terminal still sends (its answers to
    /// the stopped codex's last queries, keys typed during the switch) and returns the plain
    /// keys for the next codex ([`keys::plain_keys`]); the rest is dropped (a stray `ESC` in the
    /// next codex reads as "interrupt"). Waits for `answers` answers (each a control sequence:
    /// CSI or OSC) for up to 2 s, then until the terminal is quiet for 100 ms.
    fn take_pending_input(&mut self, answers: usize) -> Vec<u8> {
        let mut kept = Vec::new();
        if !self.is_raw() || !self.stdin_open {
            return kept;
        }
        let stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let waiting = seen < answers && Instant::now() < deadline;
            let mut fds = [nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN)];
            let wait: u16 = if waiting { 200 } else { 100 };
            if !matches!(nix::poll::poll(&mut fds, wait), Ok(n) if n > 0) {
                if waiting {
                    continue;
                }
                return kept;
            }
            // (EINTR, e.g. the SIGCHLD of the codex that just ended, is not the end of stdin)
            match pty::read_some(std::os::fd::AsRawFd::as_raw_fd(&stdin), &mut buf) {
                pty::Got::Data(n) => {
                    seen += supervise::count_answers(&buf[..n]);
                    kept.extend(keys::plain_keys(&buf[..n]));
                }
                pty::Got::Nothing => {}
                pty::Got::Closed => {
                    self.stdin_open = false;
                    return kept;
                }
            }
            if Instant::now() >= deadline + Duration::from_secs(3) {
                return kept; // a terminal that never stops sending
            }
        }
    }

    fn write_terminal_reset(&self) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(pty::TERMINAL_RESET.as_bytes()).and_then(|_| o.flush());
    }
}

/// Destroys the overlay when hs-run is done, whatever happened.
struct OverlayGuard<'a> {
    tools: &'a Tools,
    id: String,
}

impl Drop for OverlayGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.tools.overlay_destroy(&self.id) {
            eprintln!("codex-hotswap: {e:#} (remove it later with: hs-overlay destroy {})", self.id);
        }
    }
}

/// codex's exit code: its own, or 128+signal when a signal ended it.
pub fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().or_else(|| st.signal().map(|s| 128 + s)).unwrap_or(1)
}

/// Runs a model session through the switch loop. Returns hs-run's exit code.
pub fn run(opts: &Options) -> Result<i32> {
    opts.tools.check()?;
    let log = Log::open(opts.log.as_deref())?;
    let mut term = Term::new()?;
    let interactive = opts.args.kind == Kind::Tui
        && pty::is_terminal(std::io::stdin().as_fd())
        && pty::is_terminal(std::io::stdout().as_fd());
    let account = match &opts.account {
        Some(a) => a.clone(),
        None => match opts.tools.pick()? {
            Some(a) => a,
            None => match wait_for_account(&mut term, opts, None)? {
                Ok(a) => a,
                Err(code) => return Ok(code),
            },
        },
    };
    let overlay = opts.tools.overlay_create(&account, std::process::id())?;
    let guard = OverlayGuard { tools: &opts.tools, id: overlay.id.clone() };
    log.line(format_args!("start: account {account}, overlay {}, interactive {interactive}, codex {}", overlay.id, opts.codex.display()));
    let result = session(&mut term, opts, &log, interactive, account, &overlay);
    log.line(format_args!("end: {:?}", result.as_ref().map_err(|e| format!("{e:#}"))));
    // The terminal first, so whatever is said next (the overlay, an error) prints normally.
    drop(term);
    drop(guard);
    result
}

/// The switch loop, in `overlay`, starting on `account`.
fn session(
    term: &mut Term,
    opts: &Options,
    log: &Log,
    interactive: bool,
    mut account: String,
    overlay: &crate::events::OverlayEvent,
) -> Result<i32> {
    let mut argv = opts.args.first_run(opts.no_daemon);
    let mut handled: Vec<LimitEvent> = Vec::new();
    let mut swaps = 0u32;
    // This run resumes session .0 (of account .1) on a new account: a refusal is carried over.
    let mut resumed_on_new: Option<(String, String)> = None;
    // This run is a new session holding session .0 (of account .1) as text; .2 the refusal.
    let mut carrying: Option<(String, String, String)> = None;
    // Accounts found with a dead login in this run of hs-run (never tried again).
    let mut dead: Vec<String> = Vec::new();
    // After the first run stdin is spent: later runs (resumed or run again) read /dev/null.
    let mut second_run = false;
    let mut rollout: Option<PathBuf> = None;
    // This run was resumed with the continue prompt (after a limit; not after a boundary).
    let mut with_prompt = false;
    // The continue prompt for the last switch's reason (None: --no-continue).
    let mut prompt: Option<String> = opts.continue_prompt.clone();
    // Keys typed during the last switch, for the next codex.
    let mut keys: Vec<u8> = Vec::new();
    if let Some(id) = opts.args.session_target() {
        // `codex resume <id>` / `fork <id>` redraws that session, with any old limit banner.
        if let Some(p) = rollout_watch::find_session(&overlay.path.join("sessions"), id) {
            handled.extend(rollout_watch::recorded_limits(&p));
            if opts.args.resumes() {
                rollout = Some(p);
            }
        }
    }
    loop {
        // Ctrl-C, TERM or HUP while hs-run was getting ready (or switching): do not start codex.
        if let Some(code) = term.pending_quit() {
            return Ok(code);
        }
        // A carried-over session is recorded as soon as its id is known (events.jsonl and the
        // on_swap hook hear of it then, not when codex ends).
        let recorded = std::cell::Cell::new(false);
        let record_carry = |new: &str| {
            if let Some((old, from, why)) = &carrying {
                record_swap(opts, &carried_swap(opts, old, from, &account, why, Some(new.to_string())));
                recorded.set(true);
            }
        };
        let spec = supervise::RunSpec {
            codex: &opts.codex,
            argv: &argv,
            codex_home: &overlay.path,
            account: &account,
            pty: interactive,
            json_output: opts.args.json_output(),
            cwd: &opts.cwd,
            may_switch: swaps < opts.max_swaps,
            handled: &handled,
            null_stdin: second_run,
            known_rollout: rollout.as_deref(),
            resend: match (with_prompt && interactive && carrying.is_none(), prompt.as_deref(), opts.resend_prompt_after) {
                (true, Some(p), Some(after)) => Some((p, after)),
                _ => None,
            },
            stop_on_refusal: resumed_on_new.is_some(),
            boundary: (swaps < opts.max_swaps && !opts.args.reruns()).then_some(&opts.thresholds),
            hold_keys: second_run && interactive,
            keys: &keys,
            log,
            on_session: carrying.as_ref().map(|_| &record_carry as &dyn Fn(&str)),
        };
        log.line(format_args!("run on {account}: codex {}", recover::loggable(&argv)));
        let res = supervise::run_once(term, &opts.tools, &spec)?;
        let mut warnings = res.warnings.clone();
        warnings.dedup();
        for w in &warnings {
            term.notice(w);
        }
        let code = exit_code(res.status);
        log.line(format_args!(
            "codex ended: {:?}, session {:?}, limit {:?}, signal {:?}",
            res.status,
            res.session_id,
            res.limit.as_ref().map(|l| (l.source, l.resets_at)),
            res.user_signal
        ));
        let sessions = overlay.path.join("sessions");
        let (session_id, main_rollout) = main_thread(&sessions, res.session_id.clone(), res.rollout.clone());
        if session_id != res.session_id {
            log.line(format_args!("that rollout is a sub-agent's thread; the session is {session_id:?}"));
        }
        rollout = main_rollout.or(rollout);
        if let Some((old, from, why)) = carrying.take() {
            let shown = session_id.as_deref().unwrap_or("(its id was not found)");
            term.notice(&format!("session {old} was carried over as text into session {shown} on {account}"));
            if !recorded.get() {
                record_swap(opts, &carried_swap(opts, &old, &from, &account, &why, session_id.clone()));
            }
        }
        let resumed = resumed_on_new.take();
        if res.user_signal.is_some() {
            return Ok(code);
        }
        let (limit, dead_login) = match (res.limit, res.trouble) {
            (Some(l), _) => (l, None),
            (None, Some(t)) if t.kind == TroubleKind::ResumeRefused => {
                // The account is fine; the thread is not: a new session gets it as text.
                let (Some((old, from)), Some(path)) = (resumed, rollout.clone()) else { return Ok(code) };
                argv = carry_over_run(opts, log, &old, &path, prompt.as_deref())?;
                term.notice(&format!(
                    "{account} refused to continue session {old} ({}); carrying the conversation over as text into a \
                     new session on {account}",
                    recover::short(&t.text)
                ));
                keys = res.kept;
                keys.extend(term.take_pending_input(res.unanswered));
                carrying = Some((old, from, t.text));
                rollout = None;
                continue;
            }
            (None, Some(t)) => {
                if let Err(e) = opts.tools.login_needed(&account, &t.text) {
                    term.notice(&format!("{e:#}"));
                }
                dead.push(account.clone());
                // (the switch is logged like a limit's, of kind `other`)
                let kind = LimitKind::Other;
                (LimitEvent { kind, text: t.text.clone(), resets_at: None, source: Source::Other, account: None, at: Utc::now(), session_id: None }, Some(t))
            }
            (None, None) => {
                // A turn boundary near the limit: nothing was cut, so no prompt.
                let (Some(near), Some(id)) = (res.near_limit, session_id) else { return Ok(code) };
                keys = res.kept;
                keys.extend(term.take_pending_input(res.unanswered));
                account = boundary_switch(term, opts, log, &overlay.id, &account, &id, &near)?;
                log.line(format_args!("{} key bytes kept for the resumed codex", keys.len()));
                swaps += 1;
                second_run = true;
                with_prompt = false;
                argv = opts.args.resume_run(&id, None, opts.no_daemon);
                continue;
            }
        };
        let why = match &dead_login {
            None => format!("hit its usage limit{}", back_at(limit.resets_at)),
            Some(t) => format!("cannot log in ({}; fix: codex-hotswap login {account})", recover::short(&t.text)),
        };
        if swaps >= opts.max_swaps {
            term.notice(&format!(
                "{account} {why}; not switching again (--max-swaps {} reached)",
                opts.max_swaps
            ));
            return Ok(code);
        }
        // A review runs again on the next account (see `CodexArgs::reruns`); anything else
        // resumes its session, which needs its id.
        // (a codex that could not even start on a dead login has no session: start it again)
        let rerun = opts.args.reruns() || (dead_login.is_some() && session_id.is_none());
        let resume_id = match (&session_id, rerun) {
            (_, true) if opts.args.prompt_from_stdin() => {
                term.notice(&format!(
                    "{account} {why}; this review read its instructions from stdin, so it cannot \
                     run again on another account (give them as an argument instead)"
                ));
                return Ok(code);
            }
            (_, true) => None,
            (None, false) => {
                term.notice(&format!(
                    "{account} {why}, but this session's id was not found, so it cannot be \
                     continued on another account"
                ));
                return Ok(code);
            }
            (Some(_), false) if opts.args.kind == Kind::Exec && opts.continue_prompt.is_none() => {
                term.notice(&format!("{account} {why}; not continuing (--no-continue)"));
                return Ok(code);
            }
            (Some(id), false) => Some(id.clone()),
        };
        let later = || match &resume_id {
            Some(id) => format!("cannot move the session to the next account (continue it later with: codex resume {id})"),
            None => "cannot run the review again on the next account".to_string(),
        };
        let next = match opts.tools.next().with_context(later)? {
            Some(n) if dead.contains(&n) => {
                term.notice(&format!("{account} {why}; {n} cannot log in either (fix: codex-hotswap login {n})"));
                return Ok(code);
            }
            Some(n) => n,
            None => match wait_for_account(term, opts, resume_id.as_deref())? {
                Ok(n) => n,
                Err(code) => return Ok(code),
            },
        };
        keys = res.kept;
        keys.extend(term.take_pending_input(res.unanswered));
        opts.tools.overlay_swap(&overlay.id, &next).with_context(later)?;
        let swap = SwapEvent {
            at: Utc::now(),
            session_id: session_id.clone(),
            from: account.clone(),
            to: next.clone(),
            kind: limit.kind,
            resets_at: limit.resets_at,
            cwd: opts.cwd.clone(),
            how: dead_login.as_ref().map(|_| SwapHow::LoginNeeded),
            reason: dead_login.as_ref().map(|t| t.text.clone()),
            new_session_id: None,
        };
        record_swap(opts, &swap);
        log.line(format_args!("switched {account} -> {next}"));
        let what = match (rerun, opts.args.reruns()) {
            (true, true) => "running the review again",
            (true, false) => "starting codex again",
            _ => "continuing this session",
        };
        term.notice(&if next == account {
            format!("{account} is back; {what} on {next}")
        } else {
            format!("{account} {why}; {what} on {next}")
        });
        swaps += 1;
        let from = std::mem::replace(&mut account, next);
        second_run = true;
        prompt = opts.continue_prompt.as_deref().map(|p| continue_prompt(p, dead_login.is_some()));
        with_prompt = resume_id.is_some() && prompt.is_some();
        argv = match &resume_id {
            Some(id) => {
                if dead_login.is_none() {
                    handled.push(limit);
                }
                resumed_on_new = Some((id.clone(), from));
                opts.args.resume_run(id, prompt.as_deref(), opts.no_daemon)
            }
            None => {
                // A new session: nothing of the old one is redrawn or appended to.
                rollout = None;
                opts.args.first_run(opts.no_daemon)
            }
        };
    }
}

/// After a stop at a turn boundary near the limit: the next account under its thresholds (this
/// one again when another session took the last meanwhile), the overlay pointed at it, the
/// switch recorded and said. Returns the account the session continues on.
fn boundary_switch(
    term: &Term,
    opts: &Options,
    log: &Log,
    overlay_id: &str,
    account: &str,
    id: &str,
    near: &policy::NearLimit,
) -> Result<String> {
    let later = || format!("cannot move the session to the next account (continue it later with: codex resume {id})");
    let next = opts.tools.next_under_threshold(false).with_context(later)?.unwrap_or_else(|| account.to_string());
    if next != account {
        opts.tools.overlay_swap(overlay_id, &next).with_context(later)?;
        record_swap(opts, &SwapEvent {
            at: Utc::now(),
            session_id: Some(id.to_string()),
            from: account.to_string(),
            to: next.clone(),
            kind: crate::events::LimitKind::NearLimit,
            resets_at: Some(near.until),
            cwd: opts.cwd.clone(),
            how: None,
            reason: None,
            new_session_id: None,
        });
    }
    log.line(format_args!("boundary switch {account} -> {next}"));
    term.notice(&policy::near_limit_notice(account, near, &next, local_time));
    Ok(next)
}

/// The session a run belongs to, from the rollout hs-run followed: codex 0.169.0 runs a review
/// (and any sub-agent) in a thread of its own, whose rollout is open in the same process as the
/// session's; `codex resume` and the user mean the thread it was started from (the `session id:`
/// codex prints). Returns that thread's id and rollout (`None` when its file is not found).
fn main_thread(sessions: &Path, id: Option<String>, rollout: Option<PathBuf>) -> (Option<String>, Option<PathBuf>) {
    let (mut id, mut rollout) = (id, rollout);
    // (a sub-agent may start one of its own; a loop of parents is not followed for ever)
    for _ in 0..8 {
        let meta = rollout.as_deref().and_then(|p| rollout_watch::read_session_meta(p).ok());
        let Some(parent) = meta.and_then(|m| m.parent_thread_id) else { break };
        rollout = rollout_watch::find_session(sessions, &parent);
        id = Some(parent);
    }
    (id, rollout)
}

/// ` (back at 20:13)` in local time, or nothing when the reset time is unknown.
fn back_at(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| format!(" (back at {})", local_time(t))).unwrap_or_default()
}

/// `20:13` today, `Nov 26 20:13` another day.
fn local_time(t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&Local);
    if l.date_naive() == Local::now().date_naive() {
        l.format("%H:%M").to_string()
    } else {
        l.format("%b %-d %H:%M").to_string()
    }
}

/// The prompt a session resumed on the next account gets: the configured one, except that the
/// default one, which speaks of a usage limit, names the login instead when that was the reason.
fn continue_prompt(configured: &str, dead_login: bool) -> String {
    if dead_login && configured == crate::config::DEFAULT_CONTINUE_PROMPT {
        crate::config::LOGIN_CONTINUE_PROMPT.to_string()
    } else {
        configured.to_string()
    }
}

/// The command line of a new session on the same account whose first prompt is session `old`'s
/// conversation as text (read from its rollout `path`).
fn carry_over_run(opts: &Options, log: &Log, old: &str, path: &Path, prompt: Option<&str>) -> Result<Vec<String>> {
    let entries = carry::conversation(path).with_context(|| format!("cannot carry session {old} over"))?;
    let then = prompt.unwrap_or(carry::CONTINUE);
    let prompt = carry::carry_prompt(&entries, old, then, carry::MAX_BYTES);
    log.line(format_args!("carrying session {old} over: {} entries, {} bytes", entries.len(), prompt.len()));
    Ok(opts.args.fresh_run(&prompt, opts.no_daemon))
}

/// The switch of session `old` (from account `from`) carried over as text into session `new`
/// on `to`.
fn carried_swap(opts: &Options, old: &str, from: &str, to: &str, why: &str, new: Option<String>) -> SwapEvent {
    SwapEvent {
        at: Utc::now(),
        session_id: Some(old.to_string()),
        from: from.to_string(),
        to: to.to_string(),
        kind: LimitKind::Other,
        resets_at: None,
        cwd: opts.cwd.clone(),
        how: Some(SwapHow::CarriedOver),
        reason: Some(why.to_string()),
        new_session_id: new,
    }
}

/// Appends the switch to events.jsonl and runs the `on_swap` hook with it on stdin.
fn record_swap(opts: &Options, swap: &SwapEvent) {
    let line = crate::events::to_line(&Event::Swap(swap.clone()));
    if let Err(e) = crate::fsutil::append_line(&opts.events_log, &line) {
        eprintln!("codex-hotswap: {e:#}");
    }
    let Some(hook) = &opts.on_swap else { return };
    let spawned = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(hook)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(format!("{line}\n").as_bytes());
            }
            // The hook runs on its own; a thread reaps it.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("codex-hotswap: cannot run the on_swap hook: {e}"),
    }
}

/// Every account is exhausted. `exit`: list them and return `Err(EXIT_EXHAUSTED)`. `wait`: a
/// countdown to the earliest reset (Ctrl-C quits: `Err(130)`), then the account that is back.
fn wait_for_account(term: &mut Term, opts: &Options, session: Option<&str>) -> Result<Result<String, i32>> {
    let states = opts.tools.status()?;
    if opts.on_exhausted == OnExhausted::Exit {
        term.notice(if states.iter().any(|s| s.login_needed) {
            "no account is available (usage limits, logins codex refused):"
        } else {
            "every account has hit its usage limit:"
        });
        let width = states.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &states {
            let when = match (s.available, s.until) {
                _ if s.login_needed => format!("needs a new login (fix: codex-hotswap login {})", s.name),
                (true, _) => "available".to_string(),
                (false, Some(u)) => format!("back at {} ({})", local_time(u), u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                (false, None) => "reset time unknown".to_string(),
            };
            let eol = if term.is_raw() { "\r\n" } else { "\n" };
            let _ = write!(std::io::stderr(), "  {:width$}  {when}{eol}", s.name);
        }
        if let Some(id) = session {
            term.notice(&format!("continue this session later with: codex resume {id}"));
        }
        return Ok(Err(EXIT_EXHAUSTED));
    }
    let mut states = states;
    let mut next_check = Instant::now();
    let mut printed_once = false;
    loop {
        let target = tools::earliest_reset(&states);
        let now = Utc::now();
        if Instant::now() >= next_check && target.is_none_or(|(_, t)| t <= now) {
            if let Some(a) = opts.tools.pick()? {
                if term.stderr_tty {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                }
                return Ok(Ok(a));
            }
            states = opts.tools.status()?;
            next_check = Instant::now() + Duration::from_secs(5);
            continue;
        }
        let line = match target {
            Some((name, t)) => {
                let left = (t - now).num_seconds().max(0);
                format!(
                    "every account has hit its usage limit; {name} is back at {} (in {}:{:02}:{:02}) · Ctrl-C quits",
                    local_time(t),
                    left / 3600,
                    left / 60 % 60,
                    left % 60
                )
            }
            None => "every account has hit its usage limit; waiting for one to come back · Ctrl-C quits".into(),
        };
        let line = match (tools::dead_logins(&states), target) {
            (Some(names), None) => format!("no account is available ({names}: codex-hotswap login NAME); waiting · Ctrl-C quits"),
            (Some(names), Some(_)) => format!("{line} · {names} (codex-hotswap login NAME)"),
            (None, _) => line,
        };
        if term.stderr_tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2Kcodex-hotswap: {line}");
        } else if !printed_once {
            term.notice(&line);
        }
        printed_once = true;
        // Wait a second for a key or a signal.
        let stdin = std::io::stdin();
        let mut fds = vec![nix::poll::PollFd::new(term.signals.fd(), nix::poll::PollFlags::POLLIN)];
        let keys = term.is_raw() && term.stdin_open;
        if keys {
            fds.push(nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        let _ = nix::poll::poll(&mut fds, 1000u16);
        let key_ready = keys && fds[1].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        let mut quit = term.pending_quit();
        if key_ready {
            let mut b = [0u8; 64];
            match pty::read_some(std::os::fd::AsRawFd::as_raw_fd(&stdin), &mut b) {
                pty::Got::Closed => term.stdin_open = false,
                pty::Got::Data(n) if b[..n].contains(&0x03) => quit = quit.or(Some(EXIT_INTERRUPTED)),
                pty::Got::Data(_) | pty::Got::Nothing => {}
            }
        }
        if let Some(code) = quit {
            if term.stderr_tty {
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            }
            term.notice("stopped waiting for an account");
            if let Some(id) = session {
                term.notice(&format!("continue this session later with: codex resume {id}"));
            }
            return Ok(Err(code));
        }
    }
}

/// The folder codex works in: `-C DIR` (relative to hs-run's folder) or hs-run's folder.
pub fn codex_cwd(args: &CodexArgs, here: &Path) -> PathBuf {
    match args.cd() {
        Some(d) => here.join(d),
        None => here.to_path_buf(),
    }
}

/// Writes codex's help-derived facts cache here (inside hs-run's state folder).
pub fn feature_cache(state_dir: &Path) -> PathBuf {
    state_dir.join("codex-features.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_agents_rollout_stands_for_its_session() {
        let d = tempfile::tempdir().unwrap();
        let day = d.path().join("2026/11/24");
        std::fs::create_dir_all(&day).unwrap();
        let write = |id: &str, parent: Option<&str>| {
            let p = day.join(format!("rollout-2026-11-24T21-41-32-{id}.jsonl"));
            let parent =
                parent.map(|p| format!(r#","parent_thread_id":"{p}","source":{{"subagent":"review"}}"#)).unwrap_or_default();
            let meta = format!(r#"{{"type":"session_meta","payload":{{"id":"{id}","cwd":"/w"{parent}}}}}"#);
            std::fs::write(&p, meta + "\n").unwrap();
            p
        };
        let main = write("main", None);
        let review = write("review", Some("main"));
        let inner = write("inner", Some("review"));
        let got = |id: &str, p: &Path| main_thread(d.path(), Some(id.into()), Some(p.to_path_buf()));
        assert_eq!(got("main", &main), (Some("main".into()), Some(main.clone())));
        assert_eq!(got("review", &review), (Some("main".into()), Some(main.clone())));
        assert_eq!(got("inner", &inner), (Some("main".into()), Some(main.clone())));
        // the parent's file is gone: its id still, and no rollout to follow
        let orphan = write("orphan", Some("gone"));
        assert_eq!(got("orphan", &orphan), (Some("gone".into()), None));
        // nothing known, nothing made up
        assert_eq!(main_thread(d.path(), Some("x".into()), None), (Some("x".into()), None));
        assert_eq!(main_thread(d.path(), None, None), (None, None));
        // a loop of parents ends
        let a = write("loop-a", Some("loop-b"));
        write("loop-b", Some("loop-a"));
        assert!(got("loop-a", &a).0.is_some_and(|id| id.starts_with("loop-")));
    }

    #[test]
    fn exit_codes() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
    }
}
