//! One codex run: start it (under a pseudo-terminal, or on plain pipes), copy its output to the
//! user unchanged and to the detectors, follow its rollout, and stop it when a limit is seen.

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
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
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
    pub log: &'a super::Log,
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
}

/// An `hs-detect` child fed a copy of one output stream.
struct Detector {
    child: Child,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    out: ChildStdout,
    buf: Vec<u8>,
    eof: bool,
}

impl Detector {
    fn start(tools: &Tools, args: &[String]) -> Result<Detector> {
        let mut child = tools
            .command("hs-detect")?
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start hs-detect")?;
        let mut stdin = child.stdin.take().context("hs-detect stdin")?;
        let out = child.stdout.take().context("hs-detect stdout")?;
        pty::set_nonblocking(out.as_fd())?;
        // A writer thread, so a slow detector never holds up what the user sees.
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::spawn(move || {
            for chunk in rx {
                if stdin.write_all(&chunk).and_then(|_| stdin.flush()).is_err() {
                    break;
                }
            }
        });
        Ok(Detector { child, tx: Some(tx), writer: Some(writer), out, buf: Vec::new(), eof: false })
    }

    fn feed(&self, bytes: &[u8]) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(bytes.to_vec());
        }
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
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let deadline = Instant::now() + limit;
        let mut evs = Vec::new();
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
        // 0 and 1 are answers (a limit seen or not); anything else, a crash included, is a failure.
        let failed = ended && status.is_some_and(|s| !matches!(s.code(), Some(0) | Some(1)));
        let warning = failed.then(|| {
            let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
            format!("hs-detect failed, only the rollout was watched: {why}")
        });
        (evs, warning)
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
}

/// TUI: Ctrl-C (codex's own quit key, pressed twice, once more for a non-empty composer),
/// then SIGTERM to its process group, then SIGKILL.
const TUI_STOP: &[(u64, StopAction)] = &[
    (0, StopAction::Key),
    (300, StopAction::Key),
    (1200, StopAction::Key),
    (4000, StopAction::Term),
    (6000, StopAction::Kill),
];
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
    lines: [Vec<u8>; 3],
    /// Terminal queries in codex's output since the stop began.
    queries: usize,
}

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
        lines: Default::default(),
        queries: 0,
    };
    r.main_loop(term)?;
    r.finish(term)
}

impl Runner<'_> {
    fn main_loop(&mut self, term: &mut Term) -> Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let output_open = self.master.is_some() || self.out.is_some() || self.err.is_some();
            if let Some(at) = self.exited_at {
                // The child is gone; its output ends with EIO/EOF (a grandchild holding the
                // terminal open gets a second to let go).
                if !output_open || at.elapsed() > Duration::from_secs(1) {
                    return Ok(());
                }
            }
            let stdin = std::io::stdin();
            let stdin_fd = stdin.as_fd();
            let sig_fd = term.signals.fd();
            let mut fds: Vec<(u8, BorrowedFd)> = vec![(0, sig_fd)];
            let read_keys = self.master.is_some() && term.stdin_open;
            if read_keys {
                fds.push((1, stdin_fd));
            }
            if let Some(m) = &self.master {
                fds.push((2, m.as_fd()));
            }
            if let Some(o) = &self.out {
                fds.push((3, o.as_fd()));
            }
            if let Some(e) = &self.err {
                fds.push((4, e.as_fd()));
            }
            for (i, (_, d)) in self.detectors.iter().enumerate() {
                if !d.eof {
                    fds.push((10 + i as u8, d.out.as_fd()));
                }
            }
            let mut pfds: Vec<PollFd> = fds
                .iter()
                .map(|(k, fd)| {
                    let out = if *k == 2 && !self.to_codex.is_empty() { PollFlags::POLLOUT } else { PollFlags::empty() };
                    PollFd::new(*fd, PollFlags::POLLIN | out)
                })
                .collect();
            match nix::poll::poll(&mut pfds, 100u16) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("poll"),
            }
            let ready: Vec<u8> = fds
                .iter()
                .zip(&pfds)
                .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|((k, _), _)| *k)
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
                            Got::Data(n) if self.stop.is_none() => {
                                self.to_codex.extend_from_slice(&buf[..n]);
                                self.write_keys();
                            }
                            // (answers to queries counted in `queries` are among them)
                            Got::Data(n) => {
                                let answers = buf[..n].iter().filter(|b| **b == 0x1b).count();
                                self.queries = self.queries.saturating_sub(answers);
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
                    i => {
                        let evs = self.detectors[(i - 10) as usize].1.read_events();
                        for ev in evs {
                            self.on_event(ev);
                        }
                    }
                }
            }
            self.tick(term);
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
        let res = if stream == Stream::Stderr {
            std::io::stderr().lock().write_all(bytes)
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(bytes).and_then(|_| o.flush())
        };
        if res.is_err() && stream != Stream::Stderr {
            // The reader went away (a closed pipe, a hung-up terminal): keep draining codex.
            self.stdout_ok = false;
        }
        for (s, d) in &self.detectors {
            if *s == stream {
                d.feed(bytes);
            }
        }
        if self.printed_id.is_none() {
            self.look_for_session_id(stream, bytes);
        }
        if stream == Stream::Pty && self.stop.is_some() {
            self.queries += count_queries(bytes);
        }
    }

    /// Reads codex's output for the session id it prints (see
    /// [`rollout_watch::session_id_in_line`]): the way to the right rollout when codex's open
    /// files cannot be read, even with other sessions running in the same folder.
    fn look_for_session_id(&mut self, stream: Stream, bytes: &[u8]) {
        // Cheap on the hot path: line ends are found with a SIMD search, and only a line holding
        // one of the markers is decoded.
        static LINE_END: std::sync::LazyLock<regex::bytes::Regex> =
            std::sync::LazyLock::new(|| regex::bytes::Regex::new(r"[\r\n]").expect("valid"));
        static MARKER: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
            regex::bytes::Regex::new(r#"session id: |"thread_id":"|codex resume "#).expect("valid")
        });
        let line = &mut self.lines[stream as usize];
        let mut start = 0;
        for end in LINE_END.find_iter(bytes).map(|m| m.start()).chain([bytes.len()]) {
            let piece = &bytes[start..end];
            let room = 4096usize.saturating_sub(line.len());
            line.extend_from_slice(&piece[..piece.len().min(room)]);
            if end == bytes.len() {
                break;
            }
            if MARKER.is_match(line) {
                if let Some(id) = rollout_watch::session_id_in_line(&String::from_utf8_lossy(line)) {
                    self.printed_id = Some(id);
                    line.clear();
                    return;
                }
            }
            line.clear();
            start = end + 1;
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
                libc::SIGCHLD => {}
                // In raw mode Ctrl-C is a key for codex; a SIGINT can only come from kill(1),
                // and codex (in its own session) does not get it from the terminal: ignore it.
                libc::SIGTERM | libc::SIGHUP | libc::SIGINT if sig != libc::SIGINT || self.master.is_none() => {
                    self.user_signal.get_or_insert(sig);
                    self.signal_codex(sig);
                    if sig != libc::SIGINT && self.stop.is_none() {
                        self.stop = Some((Stop { since: Instant::now(), step: 0 }, SIGNAL_STOP));
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
                if l.source != Source::Rollout && is_redraw(&l, self.spec.handled) {
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
                    self.to_codex.clear();
                    let plan = if self.spec.pty { TUI_STOP } else { EXEC_STOP };
                    self.stop = Some((Stop { since: Instant::now(), step: 0 }, plan));
                }
                self.limit = Some(l);
            }
            Event::RateLimits(mut r) => {
                r.account = Some(self.spec.account.to_string());
                self.telemetry.push(r);
            }
            _ => {}
        }
    }

    fn session_id(&self) -> Option<String> {
        self.rollout.as_ref().and_then(|r| r.meta.as_ref()).map(|m| m.id.clone())
    }

    fn tick(&mut self, _term: &mut Term) {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
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
        self.advance_stop();
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

    fn poll_rollout(&mut self) {
        let evs = self.rollout.as_mut().map(|r| r.poll()).unwrap_or_default();
        for ev in evs {
            self.on_event(ev);
        }
    }

    fn flush_telemetry(&mut self) {
        let batch = std::mem::take(&mut self.telemetry);
        self.last_record = Instant::now();
        if let Err(e) = self.tools.record(&batch) {
            self.warnings.push(format!("{e:#}"));
        }
    }

    fn advance_stop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some((stop, plan)) = &mut self.stop else { return };
        let Some(&(after, action)) = plan.get(stop.step) else { return };
        if stop.since.elapsed() < Duration::from_millis(after) {
            return;
        }
        stop.step += 1;
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
        let limit = Duration::from_secs(2);
        let dets = std::mem::take(&mut self.detectors);
        for (_, d) in dets {
            let (evs, warning) = d.finish(limit);
            for ev in evs {
                self.on_event(ev);
            }
            self.warnings.extend(warning);
        }
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
        Ok(RunResult {
            status,
            session_id: self.session_id(),
            rollout: self.rollout.as_ref().map(|r| r.path.clone()),
            limit: self.limit,
            user_signal: self.user_signal,
            warnings: self.warnings,
            unanswered: self.queries,
        })
    }

    fn flush_telemetry_if_any(&mut self) {
        if !self.telemetry.is_empty() {
            self.flush_telemetry();
        }
    }
}

/// A limit shown on the screen (or printed) that was already handled: the resumed TUI redraws
/// the old conversation with its old banner. Same text (whitespace aside: wrapping differs), or
/// same kind and reset minute (the screen shows minutes, the rollout has seconds).
pub(crate) fn is_redraw(l: &LimitEvent, handled: &[LimitEvent]) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let minute = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp() / 60);
    handled.iter().any(|h| {
        squash(&h.text) == squash(&l.text) || (h.kind == l.kind && h.resets_at.is_some() && minute(h.resets_at) == minute(l.resets_at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::LimitKind;

    fn limit(text: &str, resets: &str, source: Source) -> LimitEvent {
        LimitEvent {
            kind: LimitKind::UsageLimit,
            text: text.into(),
            resets_at: Some(resets.parse().unwrap()),
            source,
            account: None,
            at: "2026-11-24T18:00:00Z".parse().unwrap(),
            session_id: None,
        }
    }

    #[test]
    fn queries_are_counted() {
        assert_eq!(count_queries(b"\x1b[?1004l\x1b[c\x1b[0 q\x1b[?25h"), 1);
        assert_eq!(count_queries(b"\x1b[?u\x1b[c\x1b[6n\x1b]10;?\x1b\\\x1b]11;?\x1b\\"), 5);
        assert_eq!(count_queries(b"plain text"), 0);
    }

    #[test]
    fn redraw_of_a_handled_limit() {
        let from_rollout = limit("You’ve hit your usage limit. Try again at 8:13 PM.", "2026-11-24T20:13:27Z", Source::Rollout);
        let redrawn = limit("You’ve hit your usage limit. Try again at\n8:13 PM.", "2026-11-24T20:13:00Z", Source::Screen);
        assert!(is_redraw(&redrawn, std::slice::from_ref(&from_rollout)));
        let wrapped = limit("You’ve hit your usage\n limit. Try again at 9:00 PM.", "2026-11-24T21:00:00Z", Source::Screen);
        let other = limit("You’ve hit your usage limit. Try again at 9:00 PM.", "2026-11-24T21:00:00Z", Source::Screen);
        assert!(is_redraw(&wrapped, std::slice::from_ref(&other)));
        // a new limit (another reset time, another text) is not a redraw
        assert!(!is_redraw(&other, &[from_rollout]));
    }
}

/// Terminal queries a TUI sends (and codex 0.169.0 sends some while it shuts down): device
/// attributes, cursor position, colours, keyboard protocol.
const QUERIES: &[&[u8]] = &[b"\x1b[c", b"\x1b[0c", b"\x1b[6n", b"\x1b]10;?", b"\x1b]11;?", b"\x1b[?u"];

fn count_queries(bytes: &[u8]) -> usize {
    QUERIES.iter().map(|q| bytes.windows(q.len()).filter(|w| w == q).count()).sum()
}


