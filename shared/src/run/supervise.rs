//! One codex run: start it (under a pseudo-terminal, or on plain pipes), copy its output to the
//! user unchanged and to the detectors, follow its rollout, and stop it when a limit is seen.

use super::recover::{ErrorLines, SignInScreen, Trouble, TroubleKind};
use super::keys::{self, Held};
use super::policy::{self, Boundary, NearLimit, Verdict};
use super::rollout_watch::{self, RolloutTail};
use super::tools::{self, Tools};
use super::Term;
use crate::events::{self, Event, LimitEvent, RateLimitsEvent, Source};
use crate::pty::{self, read_some, Got, Pty};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one run needs to know.
pub struct RunSpec<'a> {
    pub codex: &'a Path,
    pub argv: &'a [String],
    pub codex_home: &'a Path,
    pub account: &'a str,
    /// The TUI on a pseudo-terminal (else plain pipes).
    pub pty: bool,
    /// codex's stdout carries `exec --json` lines.
    pub json_output: bool,
    /// Where codex works (for the rollout fallback).
    pub cwd: &'a Path,
    /// May hs-run stop codex on a limit (false once `--max-swaps` is reached).
    pub may_switch: bool,
    /// Limits already handled in this hs-run: a resumed TUI redraws them.
    pub handled: &'a [LimitEvent],
    /// Feed codex's stdin from /dev/null (a resumed `exec` must not eat the user's stdin twice).
    pub null_stdin: bool,
    /// The rollout of the session being resumed (codex appends to it).
    pub known_rollout: Option<&'a Path>,
    /// A resumed TUI given a continue prompt: if no turn has started this long after codex
    /// started (the rollout shows none) and nothing was typed, hs-run types the prompt itself.
    pub resend: Option<(&'a str, Duration)>,
    /// This run resumes the session on a new account: a refused thread stops codex (hs-run then
    /// carries the conversation over; see [`super::recover`]).
    pub stop_on_refusal: bool,
    /// Thresholds for a switch at a turn boundary (a TUI that may switch; `None`: never).
    pub boundary: Option<&'a crate::usage::Thresholds>,
    /// A resumed TUI: keys typed meanwhile (and `keys`, kept from the switch) wait until it has
    /// drawn its composer.
    pub hold_keys: bool,
    pub keys: &'a [u8],
    pub log: &'a super::Log,
    /// Called once, while codex runs, with the id of the session it started (its rollout found
    /// in its process tree and read; a sub-agent's thread does not count).
    pub on_session: Option<&'a dyn Fn(&str)>,
}

/// How a run ended.
pub struct RunResult {
    pub status: ExitStatus,
    pub limit: Option<LimitEvent>,
    pub session_id: Option<String>,
    pub rollout: Option<std::path::PathBuf>,
    /// The signal (TERM, HUP, INT) that asked hs-run itself to stop.
    pub user_signal: Option<i32>,
    /// Problems worth telling the user once codex is off the screen.
    pub warnings: Vec<String>,
    /// Terminal queries codex sent while it was being stopped: their answers are still coming.
    pub unanswered: usize,
    /// The account's login was dead, or the thread was refused on it (no limit seen).
    pub trouble: Option<Trouble>,
    /// codex was stopped at a turn boundary: its account is near its limit.
    pub near_limit: Option<NearLimit>,
    /// Plain keys the user typed while codex was being stopped (for the next codex).
    pub kept: Vec<u8>,
}

/// An `hs-detect` child fed a copy of one output stream.
///
/// Its stdin is non-blocking and written from the main loop: what the pipe does not take waits
/// in `pending` (written when the pipe has room), so a slow detector never holds up what the
/// user sees, until it is [`BACKLOG_MAX`] behind; then codex's output is read no faster than
/// the detector reads it (as with a slow terminal), so no byte is ever skipped.
///
/// Output is handed over in batches ([`BATCH`] bytes, or what came within [`BATCH_WAIT`]): in
/// a flood, one pipe write and one wake-up of hs-detect per batch instead of per 4 KiB read.
struct Detector {
    child: Child,
    stdin: Option<ChildStdin>,
    pending: Vec<u8>,
    /// When the oldest byte in `pending` arrived.
    held_since: Instant,
    /// When `pending` last shrank (a detector stuck that long is given up).
    moved: Instant,
    out: ChildStdout,
    buf: Vec<u8>,
    eof: bool,
    /// Taken nothing for [`DETECTOR_STUCK`] while far behind: no longer fed.
    gave_up: bool,
}

/// Bytes a detector may be behind before codex's output waits for it.
const BACKLOG_MAX: usize = 4 << 20;
/// Output is written to a detector once this much is waiting...
const BATCH: usize = 32 << 10;
/// ...or once its oldest byte waited this long (a banner reaches hs-detect at most this late).
const BATCH_WAIT: Duration = Duration::from_millis(4);
/// A detector that takes nothing for this long, while behind, is given up.
const DETECTOR_STUCK: Duration = Duration::from_secs(5);

impl Detector {
    fn start(tools: &Tools, args: &[String]) -> Result<Detector> {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in the terminal (SIGINT to the foreground group) is
        // for codex, not for the detector; it ends when its stdin closes.
        let mut child = tools
            .command("hs-detect")?
            .args(args)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start hs-detect")?;
        let stdin = child.stdin.take().context("hs-detect stdin")?;
        let out = child.stdout.take().context("hs-detect stdout")?;
        pty::set_nonblocking(out.as_fd())?;
        pty::set_nonblocking(stdin.as_fd())?;
        // A larger pipe: fewer wake-ups of either side in a flood of output (best effort).
        let _ = nix::fcntl::fcntl(stdin.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
        Ok(Detector {
            child,
            stdin: Some(stdin),
            pending: Vec::new(),
            held_since: Instant::now(),
            moved: Instant::now(),
            out,
            buf: Vec::new(),
            eof: false,
            gave_up: false,
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.stdin.is_none() {
            return;
        }
        if self.pending.is_empty() {
            let now = Instant::now();
            (self.held_since, self.moved) = (now, now);
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// When what waits must be written: `None` with nothing waiting.
    fn due(&self) -> Option<Instant> {
        match self.pending.len() {
            0 => None,
            n if n >= BATCH => Some(self.held_since),
            _ => Some(self.held_since + BATCH_WAIT),
        }
    }

    /// Writes what the pipe takes of `bytes`; a detector that is gone takes nothing more.
    fn write_some(&mut self, bytes: &[u8]) -> usize {
        let Some(stdin) = &self.stdin else { return bytes.len() };
        let mut done = 0;
        while done < bytes.len() {
            match nix::unistd::write(stdin.as_fd(), &bytes[done..]) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    // (EPIPE: it ended; `finish` tells why)
                    self.stdin = None;
                    self.pending = Vec::new();
                    return bytes.len();
                }
            }
        }
        done
    }

    /// Writes what the pipe takes of the pending bytes.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let n = self.write_some(&pending);
        if n > 0 {
            self.moved = Instant::now();
        }
        if self.stdin.is_some() {
            self.pending = pending;
            self.pending.drain(..n);
            if self.pending.is_empty() && self.pending.capacity() > BACKLOG_MAX {
                self.pending = Vec::new();
            }
        }
    }

    /// Too far behind: codex's output waits (unless the detector is stuck, then it is dropped).
    fn too_far_behind(&mut self) -> bool {
        if self.pending.len() < BACKLOG_MAX {
            return false;
        }
        if self.moved.elapsed() > DETECTOR_STUCK {
            self.stdin = None;
            self.pending = Vec::new();
            self.gave_up = true;
            let _ = self.child.kill();
            return false;
        }
        true
    }

    /// Reads what is there (non-blocking) and returns complete event lines.
    fn read_events(&mut self) -> Vec<Event> {
        let mut chunk = [0u8; 8192];
        loop {
            match read_some(self.out.as_raw_fd(), &mut chunk) {
                Got::Data(n) => self.buf.extend_from_slice(&chunk[..n]),
                Got::Nothing => break,
                Got::Closed => {
                    self.eof = true;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            if let Ok(Some(ev)) = events::parse_line(&String::from_utf8_lossy(&line)) {
                out.push(ev);
            }
        }
        out
    }

    /// Closes its input and collects its last events (waiting at most `limit`), and a warning
    /// when hs-detect failed (an error or a crash) instead of reading to the end.
    fn finish(mut self, limit: Duration) -> (Vec<Event>, Option<String>) {
        let deadline = Instant::now() + limit;
        let mut evs = Vec::new();
        // What it has not read yet first (reading its events meanwhile: it may wait on us).
        while !self.pending.is_empty() && self.moved.elapsed() < limit.max(DETECTOR_STUCK) {
            let Some(stdin) = &self.stdin else { break };
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLOUT), PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, 50u16);
            self.flush();
            evs.extend(self.read_events());
        }
        let stuck = !self.pending.is_empty();
        drop(self.stdin.take());
        let deadline = if stuck { Instant::now() } else { deadline.max(Instant::now() + limit / 2) };
        while !self.eof && Instant::now() < deadline {
            let mut fds = [PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, 50u16);
            evs.extend(self.read_events());
        }
        let ended = self.eof;
        if !ended {
            let _ = self.child.kill();
        }
        let status = self.child.wait().ok();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            if ended {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
        }
        if self.gave_up {
            let secs = DETECTOR_STUCK.as_secs();
            return (evs, Some(format!("hs-detect stopped reading codex's output for {secs} s, only the rollout was watched")));
        }
        // 0 and 1 are answers (a limit seen or not); anything else, a crash included, is a failure.
        let failed = ended && status.is_some_and(|s| !matches!(s.code(), Some(0) | Some(1)));
        let warning = failed.then(|| {
            let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
            format!("hs-detect failed, only the rollout was watched: {why}")
        });
        (evs, warning)
    }
}

/// Finds the session id codex prints in its output, read by read.
#[derive(Default)]
struct IdScan {
    /// The unfinished line of each stream.
    lines: [Vec<u8>; 3],
}

impl IdScan {
    /// Reads codex's output for the session id it prints (see
    /// [`rollout_watch::session_id_in_line`]): the way to the right rollout when codex's open
    /// files cannot be read, even with other sessions running in the same folder.
    fn scan(&mut self, stream: Stream, bytes: &[u8]) -> Option<String> {
        // Cheap on the hot path: one SIMD search for the markers over what arrived, and only a
        // line holding one is decoded. Lines are cut at CR or LF; the unfinished one is kept
        // (its first 4 KiB) for the next read.
        static MARKER: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
            regex::bytes::Regex::new(r#"session id: |"thread_id":"|codex resume "#).expect("valid")
        });
        let is_end = |b: &u8| *b == b'\n' || *b == b'\r';
        let keep = |line: &mut Vec<u8>, piece: &[u8]| {
            let room = 4096usize.saturating_sub(line.len());
            line.extend_from_slice(&piece[..piece.len().min(room)]);
        };
        let line = &mut self.lines[stream as usize];
        let (Some(first), Some(last)) = (bytes.iter().position(is_end), bytes.iter().rposition(is_end)) else {
            keep(line, bytes);
            return None;
        };
        let id_in = |l: &[u8]| {
            MARKER.is_match(l).then(|| rollout_watch::session_id_in_line(&String::from_utf8_lossy(l))).flatten()
        };
        // The line that was carried over ends here.
        keep(line, &bytes[..first]);
        let mut found = id_in(line);
        // The lines that are whole in this read.
        let whole = &bytes[first..last];
        for m in MARKER.find_iter(whole) {
            if found.is_some() {
                break;
            }
            let start = whole[..m.start()].iter().rposition(is_end).map_or(0, |i| i + 1);
            let end = whole[m.end()..].iter().position(is_end).map_or(whole.len(), |i| m.end() + i);
            found = id_in(&whole[start..end]);
        }
        line.clear();
        if found.is_none() {
            keep(line, &bytes[last + 1..]);
        }
        found
    }
}

/// Where a byte stream of codex goes besides the user.
#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Pty,
    Stdout,
    Stderr,
}

/// Escalation when stopping codex.
struct Stop {
    since: Instant,
    step: usize,
    /// When the last Ctrl-C went, and whether codex drew anything since (it read the key).
    key_at: Option<Instant>,
    answered: bool,
    /// When codex showed that it is quitting ([`QUITTING`]): no Ctrl-C after that.
    quitting: Option<Instant>,
    /// The last bytes of output, for a [`QUITTING`] cut between two reads.
    tail: Vec<u8>,
}

impl Stop {
    fn new() -> Stop {
        Stop { since: Instant::now(), step: 0, key_at: None, answered: false, quitting: None, tail: Vec::new() }
    }

    /// Reads codex's output while it is being stopped.
    fn saw(&mut self, bytes: &[u8]) {
        self.answered |= self.key_at.is_some();
        // (codex draws little while it is being stopped: the copy costs nothing)
        let seen = [self.tail.as_slice(), bytes].concat();
        if self.quitting.is_none() && contains(&seen, QUITTING) {
            self.quitting = Some(Instant::now());
        }
        self.tail = seen[seen.len().saturating_sub(QUITTING.len() - 1)..].to_vec();
    }

    /// The next step of `plan` and when it is due. Once codex is quitting, no Ctrl-C is left
    /// (one now would cut its shutdown short: codex 0.169.0 then exits at once, and the
    /// resumed session may never send its first prompt), and SIGTERM waits [`QUIT_GRACE`].
    fn next(&self, plan: &[(u64, StopAction)]) -> Option<(usize, Instant, StopAction)> {
        let mut step = self.step;
        while self.quitting.is_some() && plan.get(step).is_some_and(|(_, a)| *a == StopAction::Key) {
            step += 1;
        }
        let &(after, action) = plan.get(step)?;
        let mut at = self.since + Duration::from_millis(after);
        match (action, self.key_at, self.quitting) {
            (StopAction::Key, Some(k), _) if self.answered => at = at.min(k + KEY_ANSWERED),
            (StopAction::Term, _, Some(q)) => at = at.max(q + QUIT_GRACE),
            (StopAction::Kill, _, Some(q)) => at = at.max(q + QUIT_GRACE + Duration::from_secs(2)),
            _ => {}
        }
        Some((step, at, action))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// TUI: Ctrl-C, codex's own quit key: the first closes the popup codex 0.169 shows after a
/// limit ("Approaching rate limits… switch model?"), the next quits (one more clears a composer
/// holding text first). A Ctrl-C after the first goes as soon as codex has drawn its answer to
/// the one before ([`KEY_ANSWERED`]), at the latest at its time here. Then SIGTERM to its
/// process group, then SIGKILL.
const TUI_STOP: &[(u64, StopAction)] = &[
    (0, StopAction::Key),
    (300, StopAction::Key),
    (1200, StopAction::Key),
    (4000, StopAction::Term),
    (6000, StopAction::Kill),
];
/// The least time between two Ctrl-C when codex has drawn something after the first (time for
/// codex to draw [`QUITTING`] when the first one already quit it).
const KEY_ANSWERED: Duration = Duration::from_millis(100);
/// What codex 0.169.0 draws in its composer once a Ctrl-C has made it quit.
const QUITTING: &[u8] = b"Shutting down";
/// How long a quitting codex may take before SIGTERM.
const QUIT_GRACE: Duration = Duration::from_secs(8);
/// `exec` ends by itself after a limit; only if it does not, TERM then KILL.
const EXEC_STOP: &[(u64, StopAction)] = &[(5000, StopAction::Term), (7000, StopAction::Kill)];
/// After the user's SIGTERM/SIGHUP was passed on.
const SIGNAL_STOP: &[(u64, StopAction)] = &[(5000, StopAction::Kill)];

#[derive(Clone, Copy, PartialEq)]
enum StopAction {
    Key,
    Term,
    Kill,
}

struct Runner<'a> {
    spec: &'a RunSpec<'a>,
    /// `spec.on_session` was called.
    announced: bool,
    tools: &'a Tools,
    child: Child,
    pid: u32,
    /// The PTY master, while open.
    master: Option<OwnedFd>,
    /// codex's stdout and stderr pipes (no PTY), while open.
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
    detectors: Vec<(Stream, Detector)>,
    rollout: Option<RolloutTail>,
    /// The resumed session's rollout, followed from where it ended before this codex started.
    known: Option<RolloutTail>,
    next_scan: Instant,
    launched: DateTime<Utc>,
    status: Option<ExitStatus>,
    exited_at: Option<Instant>,
    stop: Option<(Stop, &'static [(u64, StopAction)])>,
    killed: bool,
    limit: Option<LimitEvent>,
    user_signal: Option<i32>,
    telemetry: Vec<RateLimitsEvent>,
    last_record: Instant,
    warnings: Vec<String>,
    stdout_ok: bool,
    /// Keys on their way to codex: written when the PTY has room, so a codex that is busy
    /// writing never deadlocks with hs-run writing to it.
    to_codex: Vec<u8>,
    /// The session id codex printed, and the current line of each stream until it is found.
    printed_id: Option<String>,
    ids: IdScan,
    /// Terminal queries in codex's output since the stop began.
    queries: usize,
    started: Instant,
    /// When the periodic work of [`Runner::tick`] is next due; a SIGCHLD came since the last.
    next_tick: Instant,
    child_signalled: bool,
    /// The user typed something (not a terminal answer) into this codex.
    typed: bool,
    resend: Resend,
    trouble: Option<Trouble>,
    /// codex's own error lines (stderr, or the terminal after a TUI's failed start).
    error_lines: ErrorLines,
    /// The TUI's first output, for codex's sign-in screen (a login it refused).
    sign_in: Option<SignInScreen>,
    /// Turn boundaries near the limit (see [`policy::Boundary`]).
    boundary: Option<Boundary>,
    near_limit: Option<NearLimit>,
    /// Plain keys typed while codex is being stopped.
    kept: Vec<u8>,
    /// Keys held until this (resumed) codex shows its composer; the Enter that follows them.
    held: Option<Held>,
    enter_at: Option<Instant>,
}

/// Where [`RunSpec::resend`] is.
#[derive(Clone, Copy, PartialEq)]
enum Resend {
    Waiting,
    /// The prompt is typed; Enter follows after a pause (codex takes keys that come in one burst
    /// with the text for a paste, and Enter in a paste for a new line).
    Typed(Instant),
    Done,
}

/// How often [`Runner::tick`]'s periodic work runs at most.
const TICK: Duration = Duration::from_millis(20);

/// The pause between the typed prompt and its Enter.
const RESEND_ENTER_AFTER: Duration = Duration::from_millis(500);

/// Runs codex once, as `spec` says.
pub fn run_once(term: &mut Term, tools: &Tools, spec: &RunSpec) -> Result<RunResult> {
    let mut cmd = Command::new(spec.codex);
    cmd.args(spec.argv).env("CODEX_HOME", spec.codex_home);
    let size = if spec.pty { pty::window_size(std::io::stdin().as_fd()) } else { None };
    // Rollouts stamp records in milliseconds: compare with the launch time at that precision.
    let launched = {
        let now = Utc::now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    };
    // The detectors run before codex does, so a failure to start one leaves nothing behind.
    let mut detectors = Vec::new();
    if spec.pty {
        let sz = size.map(|w| (w.ws_row, w.ws_col));
        detectors.push((Stream::Pty, Detector::start(tools, &tools::detect_args("tui", sz, spec.account))?));
    } else {
        let fmt = if spec.json_output { "json" } else { "text" };
        detectors.push((Stream::Stdout, Detector::start(tools, &tools::detect_args(fmt, None, spec.account))?));
        detectors.push((Stream::Stderr, Detector::start(tools, &tools::detect_args("text", None, spec.account))?));
    }
    let (child, master, out, err) = if spec.pty {
        term.enter_raw()?;
        let p = Pty::open(size.as_ref())?;
        let (master, child) = p.spawn(&mut cmd)?;
        pty::set_nonblocking(master.as_fd())?;
        (child, Some(master), None, None)
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if spec.null_stdin { Stdio::null() } else { Stdio::inherit() });
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                pty::reset_signals_in_child();
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", spec.codex.display()))?;
        let out = child.stdout.take();
        let err = child.stderr.take();
        for fd in out.iter().map(|o| o.as_fd()).chain(err.iter().map(|e| e.as_fd())) {
            pty::set_nonblocking(fd)?;
        }
        (child, None, out, err)
    };
    let pid = child.id();
    // codex is not running yet, so the resumed session's file ends with the old records: what
    // is read from here on is new, exactly (no clock involved).
    let known = spec.known_rollout.filter(|p| p.exists()).map(|p| RolloutTail::at_end(p.to_path_buf(), launched));
    let mut r = Runner {
        spec,
        tools,
        child,
        pid,
        master,
        out,
        err,
        detectors,
        rollout: None,
        known,
        next_scan: Instant::now(),
        launched,
        status: None,
        exited_at: None,
        stop: None,
        killed: false,
        limit: None,
        user_signal: None,
        telemetry: Vec::new(),
        last_record: Instant::now(),
        warnings: Vec::new(),
        stdout_ok: true,
        to_codex: Vec::new(),
        printed_id: None,
        announced: false,
        ids: IdScan::default(),
        queries: 0,
        started: Instant::now(),
        next_tick: Instant::now(),
        child_signalled: false,
        typed: false,
        resend: if spec.resend.is_some() && spec.pty { Resend::Waiting } else { Resend::Done },
        trouble: None,
        error_lines: ErrorLines::default(),
        sign_in: size.filter(|_| spec.pty).map(|w| SignInScreen::new(w.ws_row, w.ws_col)),
        boundary: spec.boundary.filter(|_| spec.pty).map(|th| Boundary::new(th.clone())),
        near_limit: None,
        kept: Vec::new(),
        held: (spec.pty && spec.hold_keys).then(|| {
            let (rows, cols) = size.map_or((24, 80), |w| (w.ws_row, w.ws_col));
            Held::new(spec.keys.to_vec(), rows, cols)
        }),
        enter_at: None,
    };
    r.main_loop(term)?;
    r.finish(term)
}

impl Runner<'_> {
    fn main_loop(&mut self, term: &mut Term) -> Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            // A detector far behind: codex's output waits for it (see `Detector`).
            let mut behind = false;
            for (_, d) in &mut self.detectors {
                behind |= d.too_far_behind();
            }
            let output_open = self.master.is_some() || self.out.is_some() || self.err.is_some();
            if let Some(at) = &mut self.exited_at {
                // The child is gone; its output ends with EIO/EOF (a grandchild holding the
                // terminal open gets a second to let go, counted from when no detector holds
                // the output back: what codex wrote last still reaches the user).
                if behind {
                    *at = Instant::now();
                }
                if !output_open || at.elapsed() > Duration::from_secs(1) {
                    return Ok(());
                }
            }
            let stdin = std::io::stdin();
            let stdin_fd = stdin.as_fd();
            let sig_fd = term.signals.fd();
            let mut fds: Vec<(u8, BorrowedFd, PollFlags)> = vec![(0, sig_fd, PollFlags::POLLIN)];
            let read_keys = self.master.is_some() && term.stdin_open;
            if read_keys {
                fds.push((1, stdin_fd, PollFlags::POLLIN));
            }
            let output = if behind { PollFlags::empty() } else { PollFlags::POLLIN };
            if let Some(m) = &self.master {
                let keys = if self.to_codex.is_empty() { PollFlags::empty() } else { PollFlags::POLLOUT };
                fds.push((2, m.as_fd(), output | keys));
            }
            if let Some(o) = &self.out {
                fds.push((3, o.as_fd(), output));
            }
            if let Some(e) = &self.err {
                fds.push((4, e.as_fd(), output));
            }
            let now = Instant::now();
            let mut wake = self.next_wake_ms();
            for (i, (_, d)) in self.detectors.iter().enumerate() {
                if !d.eof {
                    fds.push((10 + i as u8, d.out.as_fd(), PollFlags::POLLIN));
                }
                match (&d.stdin, d.due()) {
                    // (the pipe was full when it came due)
                    (Some(w), Some(at)) if at <= now => fds.push((20 + i as u8, w.as_fd(), PollFlags::POLLOUT)),
                    (Some(_), Some(at)) => wake = wake.min(ms_until(at, now)),
                    _ => {}
                }
            }
            let mut pfds: Vec<PollFd> = fds.iter().map(|(_, fd, ev)| PollFd::new(*fd, *ev)).collect();
            match nix::poll::poll(&mut pfds, wake) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("poll"),
            }
            let ready: Vec<u8> = fds
                .iter()
                .zip(&pfds)
                .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|((k, _, _), _)| *k)
                .collect();
            drop(pfds);
            drop(fds);
            for k in ready {
                match k {
                    0 => self.on_signals(term),
                    1 => {
                        match read_some(stdin.as_raw_fd(), &mut buf) {
                            Got::Nothing => {}
                            Got::Closed => term.stdin_open = false,
                            // While codex is being stopped, keys (and the terminal's answers to
                            // its last queries) are dropped: they are not for the next codex.
                            Got::Data(n) if self.stop.is_none() => self.keys_in(&buf[..n]),
                            // Kept for the next codex (answers to queries counted in `queries`
                            // are among them, and go nowhere).
                            Got::Data(n) => {
                                self.queries = self.queries.saturating_sub(count_answers(&buf[..n]));
                                self.kept.extend(keys::plain_keys(&buf[..n]));
                            }
                        }
                    }
                    2 => {
                        self.write_keys();
                        let raw = self.master.as_ref().map(|m| m.as_raw_fd()).unwrap_or(-1);
                        match read_some(raw, &mut buf) {
                            Got::Nothing => {}
                            Got::Closed => self.master = None, // EIO: the child side closed
                            Got::Data(n) => self.output(Stream::Pty, &buf[..n]),
                        }
                    }
                    3 | 4 => {
                        let stream = if k == 3 { Stream::Stdout } else { Stream::Stderr };
                        let raw = if k == 3 {
                            self.out.as_ref().map(|x| x.as_raw_fd())
                        } else {
                            self.err.as_ref().map(|x| x.as_raw_fd())
                        };
                        match raw.map_or(Got::Closed, |fd| read_some(fd, &mut buf)) {
                            Got::Nothing => {}
                            Got::Closed if k == 3 => self.out = None,
                            Got::Closed => self.err = None,
                            Got::Data(n) => self.output(stream, &buf[..n]),
                        }
                    }
                    i if i >= 20 => self.detectors[(i - 20) as usize].1.flush(),
                    i => {
                        let evs = self.detectors[(i - 10) as usize].1.read_events();
                        for ev in evs {
                            self.on_event(ev);
                        }
                    }
                }
            }
            let now = Instant::now();
            for (_, d) in &mut self.detectors {
                if d.due().is_some_and(|at| at <= now) {
                    d.flush();
                }
            }
            self.tick(term);
        }
    }

    /// What the user typed, on its way to codex (plain keys held while a resumed codex has not
    /// drawn its composer yet).
    fn keys_in(&mut self, bytes: &[u8]) {
        if keys::has_keys(bytes) {
            self.typed = true;
            if let Some(b) = &mut self.boundary {
                b.key(Utc::now());
            }
        }
        match &mut self.held {
            Some(h) => {
                let (now, later) = keys::split(bytes);
                h.keys.extend(later);
                self.to_codex.extend(now);
            }
            None => self.to_codex.extend_from_slice(bytes),
        }
        self.write_keys();
    }

    /// Types the held keys once codex shows its composer (or has not for [`keys::HOLD_AT_MOST`]).
    fn release_held(&mut self) {
        if self.stop.is_some() || self.status.is_some() {
            return;
        }
        if self.enter_at.is_some_and(|at| Instant::now() >= at) {
            self.enter_at = None;
            self.to_codex.push(b'\r');
            self.write_keys();
        }
        let ready = self.held.as_ref().is_some_and(|h| h.composer_ready() || h.timed_out());
        let Some(h) = self.held.take_if(|_| ready) else { return };
        let on_time = h.composer_ready();
        let (text, enter) = h.release();
        self.spec.log.line(format_args!(
            "{}: typing the {} key bytes held for it{}",
            if on_time { "codex shows its composer" } else { "no composer seen in time" },
            text.len(),
            if enter { ", Enter after a pause" } else { "" }
        ));
        if !text.is_empty() || enter {
            self.typed = true;
            if let Some(b) = &mut self.boundary {
                b.key(Utc::now());
            }
        }
        self.to_codex.extend(text);
        self.write_keys();
        if enter {
            self.enter_at = Some(Instant::now() + keys::ENTER_AFTER);
        }
    }

    /// Stops codex for a switch (once): keys not yet written and keys held go to the next codex.
    fn begin_stop(&mut self, plan: &'static [(u64, StopAction)]) {
        if self.stop.is_some() {
            return;
        }
        self.to_codex.clear();
        self.enter_at = None;
        if let Some(h) = self.held.take() {
            self.kept.extend(h.keys);
        }
        self.stop = Some((Stop::new(), plan));
    }

    /// At a turn's end, asks the policy whether to leave this account (see [`policy::Boundary`]).
    fn judge_boundary(&mut self) {
        if self.stop.is_some() || self.status.is_some() {
            return;
        }
        let turns = self.rollout.as_ref().or(self.known.as_ref()).map(|t| t.turns()).unwrap_or_default();
        let Some(b) = &mut self.boundary else { return };
        let Some(verdict) = b.judge(turns, Utc::now()) else { return };
        let account = self.spec.account;
        let n = match verdict {
            Verdict::Stay(why) => return self.spec.log.line(format_args!("turn ended on {account}: staying, {why}")),
            Verdict::Switch(n) => n,
        };
        let what = format!("turn ended on {account}: {} window at {:.0}%", n.window.name, n.window.used_percent);
        if self.session_id().is_none() {
            return self.spec.log.line(format_args!("{what}, but the session id is unknown: staying"));
        }
        match self.tools.next_under_threshold(true) {
            Ok(Some(next)) => {
                self.spec.log.line(format_args!("{what}: stopping codex to continue on {next}"));
                self.flush_telemetry_if_any();
                self.near_limit = Some(n);
                self.begin_stop(TUI_STOP);
            }
            Ok(None) => self.spec.log.line(format_args!("{what}, and no other account is under its thresholds: staying")),
            Err(e) => self.warnings.push(format!("{e:#}")),
        }
    }

    /// Writes what the PTY takes of the pending keys.
    fn write_keys(&mut self) {
        let Some(m) = &self.master else { return self.to_codex.clear() };
        while !self.to_codex.is_empty() {
            match nix::unistd::write(m.as_fd(), &self.to_codex) {
                Ok(n) => {
                    self.to_codex.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    /// Copies codex output to the user unchanged and to the stream's detector.
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        // Straight to the descriptor: one write per read (std's line-buffered stdout would
        // make two).
        let res = if stream == Stream::Stderr {
            pty::write_all(std::io::stderr().as_fd(), bytes)
        } else {
            pty::write_all(std::io::stdout().as_fd(), bytes)
        };
        if res.is_err() && stream != Stream::Stderr {
            // The reader went away (a closed pipe, a hung-up terminal): keep draining codex.
            self.stdout_ok = false;
        }
        for (s, d) in &mut self.detectors {
            if *s == stream {
                d.feed(bytes);
            }
        }
        // (only needed while codex's open files have not shown its rollout)
        if self.printed_id.is_none() && self.rollout.is_none() {
            self.printed_id = self.ids.scan(stream, bytes);
        }
        if let Some(t) = self.sign_in.as_mut().and_then(|s| s.feed(bytes)) {
            self.on_trouble(t);
        }
        if stream != Stream::Stdout {
            // (on the TUI's screen only codex's failed start, which names its JSON-RPC error
            // code: an answer may hold any words)
            let found = self.error_lines.scan(bytes).filter(|t| stream == Stream::Stderr || t.text.contains("(code -32"));
            if let Some(t) = found {
                self.on_trouble(t);
            }
        }
        if let (Stream::Pty, Some(h)) = (stream, &mut self.held) {
            h.saw(bytes);
        }
        if let (Stream::Pty, Some((stop, _))) = (stream, &mut self.stop) {
            self.queries += count_queries(bytes);
            let was = stop.quitting.is_some();
            stop.saw(bytes);
            if !was && stop.quitting.is_some() {
                self.spec.log.line("codex is quitting: no more Ctrl-C");
            }
        }
    }

    fn on_signals(&mut self, term: &mut Term) {
        for sig in term.signals.take() {
            match sig {
                libc::SIGWINCH => {
                    if let (Some(m), Some(ws)) = (&self.master, pty::window_size(std::io::stdin().as_fd())) {
                        let _ = pty::set_window_size(m.as_fd(), &ws);
                        self.restart_screen_detector((ws.ws_row, ws.ws_col));
                    }
                }
                libc::SIGCHLD => self.child_signalled = true,
                // In raw mode Ctrl-C is a key for codex; a SIGINT can only come from kill(1),
                // and codex (in its own session) does not get it from the terminal: ignore it.
                libc::SIGTERM | libc::SIGHUP | libc::SIGINT if sig != libc::SIGINT || self.master.is_none() => {
                    self.user_signal.get_or_insert(sig);
                    self.signal_codex(sig);
                    if sig != libc::SIGINT && self.stop.is_none() {
                        self.stop = Some((Stop::new(), SIGNAL_STOP));
                    }
                }
                _ => {}
            }
        }
    }

    /// hs-detect reads the screen at a fixed size: after a resize a new one, at the new size,
    /// reads codex's repaint. (What the new one sees again was handled already, or is a redraw.)
    fn restart_screen_detector(&mut self, size: (u16, u16)) {
        let Some(i) = self.detectors.iter().position(|(s, _)| *s == Stream::Pty) else { return };
        match Detector::start(self.tools, &tools::detect_args("tui", Some(size), self.spec.account)) {
            Ok(new) => {
                let (_, old) = std::mem::replace(&mut self.detectors[i], (Stream::Pty, new));
                let (evs, warning) = old.finish(Duration::from_millis(500));
                self.warnings.extend(warning);
                for ev in evs {
                    self.on_event(ev);
                }
            }
            Err(e) => self.warnings.push(format!("{e:#}")),
        }
    }

    /// Sends `sig` to codex: its whole process group under a PTY (it leads its own session),
    /// else the process we started (the npm launcher passes it on to the native binary).
    fn signal_codex(&self, sig: i32) {
        let Ok(s) = Signal::try_from(sig) else { return };
        let pid = Pid::from_raw(self.pid as i32);
        if self.spec.pty {
            let _ = killpg(pid, s);
        } else {
            let _ = kill(pid, s);
        }
    }

    fn on_event(&mut self, ev: Event) {
        if let Event::Limit(l) = &ev {
            self.spec.log.line(format_args!(
                "limit event: source {:?}, resets_at {:?}, at {}, text {:?}",
                l.source, l.resets_at, l.at, l.text
            ));
        }
        match ev {
            Event::Limit(mut l) => {
                if self.user_signal.is_some() {
                    return;
                }
                if let Some(seen) = &mut self.limit {
                    // The same limit from the rollout, after the screen: its reset time is exact
                    // (the screen says "8:13 PM"); record that one.
                    if seen.source != Source::Rollout && l.source == Source::Rollout && l.resets_at.is_some() {
                        seen.resets_at = l.resets_at;
                        seen.source = Source::Rollout;
                        if let Err(e) = self.tools.exhaust(seen) {
                            self.warnings.push(format!("{e:#}"));
                        }
                    }
                    return;
                }
                if l.source != Source::Rollout && policy::is_redraw(&l, self.spec.handled) {
                    self.spec.log.line("  a redraw of a limit already handled: ignored");
                    return;
                }
                l.account = Some(self.spec.account.to_string());
                if l.session_id.is_none() {
                    l.session_id = self.session_id();
                }
                if let Err(e) = self.tools.exhaust(&l) {
                    self.warnings.push(format!("{e:#}"));
                }
                if self.spec.may_switch && self.status.is_none() {
                    self.begin_stop(if self.spec.pty { TUI_STOP } else { EXEC_STOP });
                }
                self.limit = Some(l);
            }
            Event::RateLimits(mut r) => {
                r.account = Some(self.spec.account.to_string());
                if let Some(b) = &mut self.boundary {
                    b.usage(&r);
                }
                self.telemetry.push(r);
            }
            _ => {}
        }
    }

    /// A dead login or a refused thread: codex is stopped like at a limit (it would sit there
    /// with the error), unless a limit came first; a refusal only in a run that resumed the
    /// session on a new account.
    fn on_trouble(&mut self, t: Trouble) {
        self.spec.log.line(format_args!("trouble: {:?}: {:?}", t.kind, t.text));
        if self.trouble.is_some() || self.limit.is_some() || self.user_signal.is_some() {
            return;
        }
        if t.kind == TroubleKind::ResumeRefused && !(self.spec.stop_on_refusal && self.spec.may_switch) {
            return;
        }
        if self.spec.may_switch && self.status.is_none() && self.stop.is_none() {
            self.to_codex.clear();
            let plan = if self.spec.pty { TUI_STOP } else { EXEC_STOP };
            self.stop = Some((Stop::new(), plan));
        }
        self.trouble = Some(t);
    }

    fn session_id(&self) -> Option<String> {
        self.rollout.as_ref().and_then(|r| r.meta.as_ref()).map(|m| m.id.clone())
    }

    fn tick(&mut self, _term: &mut Term) {
        // The periodic work runs at most every 20 ms (and codex's end is looked for at once on
        // SIGCHLD): a flood of output comes in 4 KiB reads, and each needs only the copying.
        let now = Instant::now();
        if !self.child_signalled && now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.child_signalled = false;
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.spec.log.line(format_args!("codex exited: {st}"));
                self.status = Some(st);
                self.exited_at = Some(Instant::now());
            }
        }
        if self.rollout.is_none() && self.status.is_none() && Instant::now() >= self.next_scan {
            self.next_scan = Instant::now() + Duration::from_millis(200);
            if let Some(p) = crate::procs::find_open_file(self.pid, true, rollout_watch::is_rollout_name) {
                self.spec.log.line(format_args!("rollout open in codex's process tree: {}", p.display()));
                self.rollout = Some(self.tail_for(p));
            }
        }
        self.poll_rollout();
        if !self.telemetry.is_empty() && self.last_record.elapsed() > Duration::from_secs(2) {
            self.flush_telemetry();
        }
        self.judge_boundary();
        self.advance_stop();
        self.release_held();
        self.resend_if_no_turn();
    }

    /// codex 0.169.0 sometimes starts a resumed session, redraws it, and never sends the prompt
    /// it was given (seen under load; apparently held behind its rate-limit recovery, which the
    /// old account's replayed limit sets). After [`RunSpec::resend`]'s wait with no turn in
    /// the rollout and nothing typed by the user, the prompt is typed into codex once; codex may
    /// then send the held one as well (one extra turn: better than a session that waits forever).
    fn resend_if_no_turn(&mut self) {
        let Some((prompt, after)) = self.spec.resend else { return };
        match self.resend {
            Resend::Waiting => {
                let turned = [&self.rollout, &self.known].into_iter().flatten().any(|t| t.turn_started());
                if turned || self.typed || self.stop.is_some() || self.status.is_some() || self.master.is_none() {
                    self.resend = Resend::Done;
                } else if self.started.elapsed() >= after {
                    self.spec.log.line(format_args!(
                        "no turn started {:.1} s after the resume: typing the continue prompt",
                        after.as_secs_f32()
                    ));
                    let text = prompt.replace(['\r', '\n'], " ");
                    self.to_codex.extend_from_slice(text.as_bytes());
                    self.write_keys();
                    self.resend = Resend::Typed(Instant::now());
                }
            }
            Resend::Typed(at) if at.elapsed() >= RESEND_ENTER_AFTER => {
                if self.stop.is_none() && self.status.is_none() {
                    self.to_codex.push(b'\r');
                    self.write_keys();
                }
                self.resend = Resend::Done;
            }
            _ => {}
        }
    }

    /// Follows `path`: the resumed session's file from where it ended, any other from its start
    /// (reporting only records stamped after the launch).
    fn tail_for(&mut self, path: std::path::PathBuf) -> RolloutTail {
        let same = |k: &RolloutTail| {
            let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            canon(&k.path) == canon(&path)
        };
        match self.known.take() {
            Some(k) if same(&k) => k,
            _ => RolloutTail::new(path, self.launched),
        }
    }

    /// Reads what codex appended to its rollout: the one found open in its process tree, else
    /// (not found yet) the resumed session's, which is the same file.
    fn poll_rollout(&mut self) {
        let tail = self.rollout.as_mut().or(self.known.as_mut());
        let (evs, troubles) = tail.map(|r| (r.poll(), r.take_troubles())).unwrap_or_default();
        for ev in evs {
            self.on_event(ev);
        }
        for t in troubles {
            self.on_trouble(t);
        }
        if let (false, Some(f)) = (self.announced, self.spec.on_session) {
            if let Some(m) = self.rollout.as_ref().and_then(|r| r.meta.as_ref()).filter(|m| m.parent_thread_id.is_none()) {
                self.announced = true;
                f(&m.id);
            }
        }
        if self.sign_in.is_some() && [&self.rollout, &self.known].into_iter().flatten().any(|t| t.turn_started()) {
            self.sign_in = None;
        }
    }

    fn flush_telemetry(&mut self) {
        let batch = std::mem::take(&mut self.telemetry);
        self.last_record = Instant::now();
        if let Err(e) = self.tools.record(&batch) {
            self.warnings.push(format!("{e:#}"));
        }
    }

    /// How long the main loop may sleep: 100 ms, less when a stop step is due sooner.
    fn next_wake_ms(&self) -> u16 {
        // (see also the detectors' batches in `main_loop`)
        let due = match (self.status, &self.stop) {
            (None, Some((stop, plan))) => stop.next(plan).map(|(_, at, _)| at.saturating_duration_since(Instant::now())),
            _ => None,
        };
        let tick = self.next_tick.saturating_duration_since(Instant::now());
        let ms = due.map_or(100, |d| d.max(tick).as_millis().min(100) as u16);
        ms.max(1)
    }

    fn advance_stop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some((stop, plan)) = &mut self.stop else { return };
        let Some((step, at, action)) = stop.next(plan) else { return };
        if Instant::now() < at {
            return;
        }
        stop.step = step + 1;
        if action == StopAction::Key {
            stop.key_at = Some(Instant::now());
            stop.answered = false;
        }
        self.spec.log.line(format_args!("stop step {}: {}", stop.step, match action {
            StopAction::Key => "Ctrl-C",
            StopAction::Term => "SIGTERM",
            StopAction::Kill => "SIGKILL",
        }));
        match action {
            StopAction::Key => {
                self.to_codex.push(0x03);
                self.write_keys();
            }
            StopAction::Term => {
                self.killed = true;
                self.signal_codex(libc::SIGTERM);
            }
            StopAction::Kill => {
                self.killed = true;
                let pid = Pid::from_raw(self.pid as i32);
                if self.spec.pty {
                    let _ = killpg(pid, Signal::SIGKILL);
                } else {
                    for p in crate::procs::process_tree(self.pid) {
                        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
                    }
                }
            }
        }
    }

    fn finish(mut self, term: &mut Term) -> Result<RunResult> {
        let status = match self.status {
            Some(s) => s,
            None => self.child.wait().context("cannot wait for codex")?,
        };
        self.spec.log.line(format_args!("codex's output closed: {}", self.master.is_none() && self.out.is_none() && self.err.is_none()));
        let limit = Duration::from_secs(2);
        let dets = std::mem::take(&mut self.detectors);
        for (_, d) in dets {
            let (evs, warning) = d.finish(limit);
            for ev in evs {
                self.on_event(ev);
            }
            self.warnings.extend(warning);
        }
        self.spec.log.line("detectors done");
        if self.rollout.is_none() {
            // codex's open files could not be read (not Linux, or it was too quick): the session
            // being resumed, else the one codex named in its output, else the newest rollout of
            // this folder that started after the launch.
            let sessions = self.spec.codex_home.join("sessions");
            let printed = self.printed_id.as_deref().and_then(|id| rollout_watch::find_session(&sessions, id));
            self.rollout = match (self.known.take(), printed) {
                (Some(k), _) => {
                    self.spec.log.line(format_args!("rollout of the resumed session: {}", k.path.display()));
                    Some(k)
                }
                (None, Some(p)) => {
                    self.spec.log.line(format_args!("rollout of the session codex printed: {}", p.display()));
                    Some(self.tail_for(p))
                }
                (None, None) => {
                    let p = rollout_watch::newest_rollout_for(&sessions, self.spec.cwd, self.launched);
                    self.spec.log.line(format_args!("newest rollout of this folder: {p:?}"));
                    p.map(|p| self.tail_for(p))
                }
            };
        }
        self.poll_rollout();
        self.flush_telemetry_if_any();
        use std::os::unix::process::ExitStatusExt;
        if self.spec.pty && (self.killed || status.signal().is_some()) && self.stdout_ok {
            // codex had no chance to switch the terminal back: do it for it.
            term.write_terminal_reset();
        }
        let trouble = self.trouble.take().filter(|_| self.limit.is_none());
        Ok(RunResult {
            trouble,
            status,
            session_id: self.session_id(),
            rollout: self.rollout.as_ref().map(|r| r.path.clone()),
            limit: self.limit,
            user_signal: self.user_signal,
            warnings: self.warnings,
            unanswered: self.queries,
            near_limit: self.near_limit,
            kept: self.kept,
        })
    }

    fn flush_telemetry_if_any(&mut self) {
        if !self.telemetry.is_empty() {
            self.flush_telemetry();
        }
    }
}

/// Terminal queries a TUI sends (and codex 0.169.0 sends some while it shuts down): device
/// attributes, cursor position, colours, keyboard protocol.
const QUERIES: &[&[u8]] = &[b"\x1b[c", b"\x1b[0c", b"\x1b[6n", b"\x1b]10;?", b"\x1b]11;?", b"\x1b[?u"];

/// Terminal answers in what the terminal sent: each starts a control sequence (CSI or OSC; the
/// `ESC \\` that ends an OSC answer is not another one).
pub(crate) fn count_answers(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| w == b"\x1b[" || w == b"\x1b]").count()
}

fn count_queries(bytes: &[u8]) -> usize {
    QUERIES.iter().map(|q| bytes.windows(q.len()).filter(|w| w == q).count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_found_however_the_output_is_cut() {
        let id = "019a6f3e-1b2c-7d4e-8f90-a1b2c3d4e5f6";
        let outputs = [
            format!("x\r\nsession id: \x1b[36m{id}\x1b[0m\r\nmore"),
            format!("{{\"type\":\"thread.started\",\"thread_id\":\"{id}\"}}\n"),
            format!("To continue this session, run codex resume {id}\n"),
            format!("{}\nlong line, then codex resume {id}\r", "y".repeat(5_000)),
        ];
        for out in &outputs {
            let b = out.as_bytes();
            for cut in 0..=b.len() {
                let mut s = IdScan::default();
                let got = s.scan(Stream::Stdout, &b[..cut]).or_else(|| s.scan(Stream::Stdout, &b[cut..]));
                assert_eq!(got.as_deref(), Some(id), "cut at {cut} of {out:?}");
            }
        }
        // a marker split over two streams is no id; nor is an id without a line end yet
        let mut s = IdScan::default();
        assert_eq!(s.scan(Stream::Stdout, b"codex resu"), None);
        assert_eq!(s.scan(Stream::Stderr, format!("me {id}\n").as_bytes()), None);
        assert_eq!(s.scan(Stream::Pty, format!("codex resume {id}").as_bytes()), None);
    }

    #[test]
    fn quitting_is_seen_however_the_output_is_cut() {
        let out = b"\x1b[28;3HShutting down...\x1b[?2026l";
        for cut in 0..=out.len() {
            let mut stop = Stop::new();
            stop.saw(b"frame");
            stop.saw(&out[..cut]);
            stop.saw(&out[cut..]);
            assert!(stop.quitting.is_some(), "cut at {cut}");
        }
        let mut stop = Stop::new();
        stop.saw(b"Shutting");
        stop.saw(b" up");
        assert!(stop.quitting.is_none());
    }

    #[test]
    fn answers_are_counted() {
        // device attributes, cursor position, keyboard flags, two colours (ended by ESC \\ or BEL)
        let answers = b"\x1b[?62;22c\x1b[12;1R\x1b[?0u\x1b]10;rgb:ffff/ffff/ffff\x1b\\\x1b]11;rgb:0/0/0\x07";
        assert_eq!(count_answers(answers), 5);
        assert_eq!(count_answers(b"ab"), 0);
    }

    #[test]
    fn queries_are_counted() {
        assert_eq!(count_queries(b"\x1b[?1004l\x1b[c\x1b[0 q\x1b[?25h"), 1);
        assert_eq!(count_queries(b"\x1b[?u\x1b[c\x1b[6n\x1b]10;?\x1b\\\x1b]11;?\x1b\\"), 5);
        assert_eq!(count_queries(b"plain text"), 0);
    }
}

/// Milliseconds from `now` to `at`, rounded up, at least 1 and at most 100 (a poll timeout).
fn ms_until(at: Instant, now: Instant) -> u16 {
    let d = at.saturating_duration_since(now);
    (d.as_micros().div_ceil(1000) as u64).clamp(1, 100) as u16
}
