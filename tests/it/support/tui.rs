//! A TUI driver for tests: runs a command under a pseudo-terminal of a given size, keeps every
//! byte it prints and a `vt100` model of the screen, answers the terminal queries a real terminal
//! answers (cursor position, device attributes, default colours), and types keys.
//!
//! Screen matching (`wait_for_text`, `screen_has`) ignores whitespace (spaces, line breaks) on both
//! sides, so a sentence that codex wrapped over several rows still matches, even when the wrap
//! split a URL.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::env::TestEnv;
use super::mock::{real_codex, real_codex_path, MockBackend};

/// The real codex (`mock::real_codex()`) in `env`'s sealed environment, with `CODEX_HOME`, the
/// mock's `codex_env()` and node on PATH, started in `cwd`. Add `--no-daemon` for the TUI, and
/// `exec --skip-git-repo-check …` for exec in a folder that is not a git repository.
pub fn codex_command(env: &TestEnv, mock: &MockBackend, codex_home: &Path, cwd: &Path) -> Command {
    let mut c = real_codex_command(env, codex_home, cwd);
    c.envs(mock.codex_env());
    c
}

/// Like `codex_command` without a mock's variables (e.g. for a `mock-backend` process).
pub fn real_codex_command(env: &TestEnv, codex_home: &Path, cwd: &Path) -> Command {
    let mut c = env.cmd(&real_codex().to_string_lossy());
    let path = env.vars.get("PATH").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    c.current_dir(cwd).env("CODEX_HOME", codex_home).env("PATH", real_codex_path(&path));
    c
}

/// Puts the real codex on `env`'s PATH as `codex` (a link in `<root>/real-codex-bin`, ahead of
/// the rest, with node's folder) for tools and shims that look codex up by name. Returns the link.
pub fn put_real_codex_on_path(env: &mut TestEnv) -> PathBuf {
    let dir = env.root().join("real-codex-bin");
    std::fs::create_dir_all(&dir).expect("create real-codex-bin");
    let link = dir.join("codex");
    std::os::unix::fs::symlink(real_codex(), &link).expect("link codex");
    let path = env.vars.get("PATH").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    env.set("PATH", format!("{}:{}", dir.display(), real_codex_path(&path)));
    link
}

/// The pause between typing text and pressing Enter: keys sent in one burst look like a paste to
/// codex, and an Enter inside that burst may not submit.
pub const SUBMIT_PAUSE: Duration = Duration::from_millis(500);

struct Term {
    parser: vt100::Parser,
    raw: Vec<u8>,
    /// The last bytes of the previous read, to find queries split across reads.
    tail: Vec<u8>,
    eof: bool,
}

struct Shared {
    term: Mutex<Term>,
    changed: Condvar,
    master: Mutex<File>,
}

/// A command running under a pseudo-terminal. Killed (its whole process group) on drop.
pub struct Tui {
    shared: Arc<Shared>,
    child: Child,
    exit: Option<ExitStatus>,
    reader: Option<JoinHandle<()>>,
}

fn winsize(rows: u16, cols: u16) -> nix::pty::Winsize {
    nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

/// `text` without any whitespace: the form screen matching compares.
pub fn squash(text: &str) -> String {
    text.split_whitespace().collect()
}

impl Tui {
    /// Starts `cmd` with its stdin, stdout and stderr on a new PTY of `rows`×`cols`, in its own
    /// session with the PTY as controlling terminal. `TERM` is set to `xterm-256color` unless the
    /// command sets it.
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Tui {
        Tui::try_spawn(cmd, rows, cols).unwrap_or_else(|e| panic!("tui: {e:#}"))
    }

    pub fn try_spawn(mut cmd: Command, rows: u16, cols: u16) -> Result<Tui> {
        let pty = nix::pty::openpty(&winsize(rows, cols), None).context("openpty")?;
        // Other tests spawn children in parallel: they must not inherit this PTY (a stray holder
        // of the slave side would keep the master from ever reading EOF).
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
                .context("set close-on-exec on the pty")?;
        }
        let slave: OwnedFd = pty.slave;
        let master = File::from(pty.master);
        if !cmd.get_envs().any(|(k, _)| k == "TERM") {
            cmd.env("TERM", "xterm-256color");
        }
        cmd.stdin(Stdio::from(slave.try_clone().context("dup pty")?))
            .stdout(Stdio::from(slave.try_clone().context("dup pty")?))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE, libc::SIGCHLD] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                let empty: libc::sigset_t = std::mem::zeroed();
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("failed to start {:?}", cmd.get_program()))?;
        let reader_end = master.try_clone().context("dup pty master")?;
        let shared = Arc::new(Shared {
            term: Mutex::new(Term {
                parser: vt100::Parser::new(rows, cols, 0),
                raw: Vec::new(),
                tail: Vec::new(),
                eof: false,
            }),
            changed: Condvar::new(),
            master: Mutex::new(master),
        });
        let reader = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("tui-reader".into())
                .spawn(move || read_loop(reader_end, &shared))
                .context("spawn reader")?
        };
        Ok(Tui { shared, child, exit: None, reader: Some(reader) })
    }

    /// Process id of the started command (it leads its own session and process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes raw bytes to the terminal (keys, escape sequences).
    pub fn send(&self, bytes: &[u8]) {
        let mut m = self.shared.master.lock().unwrap();
        m.write_all(bytes).and_then(|_| m.flush()).expect("write to pty");
    }

    /// Types `text` (in one write: codex sees a paste burst).
    pub fn type_text(&self, text: &str) {
        self.send(text.as_bytes());
    }

    /// Types `text`, pauses `SUBMIT_PAUSE`, then presses Enter.
    pub fn submit(&self, text: &str) {
        self.type_text(text);
        std::thread::sleep(SUBMIT_PAUSE);
        self.send(b"\r");
    }

    /// The visible screen, one line per row (trailing blanks trimmed).
    pub fn screen(&self) -> String {
        self.shared.term.lock().unwrap().parser.screen().contents()
    }

    /// Whether the screen shows `text` (whitespace ignored).
    pub fn screen_has(&self, text: &str) -> bool {
        squash(&self.screen()).contains(&squash(text))
    }

    /// Waits until the screen shows `text`; on timeout the error is a dump of the screen.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<(), String> {
        let want = squash(text);
        self.wait_until(|s| squash(s).contains(&want), timeout)
            .map_err(|screen| format!("timed out after {timeout:?} waiting for {text:?} on the screen:\n{screen}"))
    }

    /// `wait_for_text`, panicking with the screen dump on timeout.
    #[track_caller]
    pub fn expect_text(&self, text: &str, timeout: Duration) {
        if let Err(dump) = self.wait_for_text(text, timeout) {
            panic!("{dump}");
        }
    }

    /// Waits until `pred(screen)` holds; on timeout returns the last screen as the error.
    /// Also gives up (with the screen) when the command's output ended.
    pub fn wait_until(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut term = self.shared.term.lock().unwrap();
        loop {
            let screen = term.parser.screen().contents();
            if pred(&screen) {
                return Ok(());
            }
            let left = deadline.checked_duration_since(Instant::now());
            match left {
                Some(left) if !term.eof => term = self.shared.changed.wait_timeout(term, left).unwrap().0,
                _ => {
                    let why = if term.eof { "(the program's output ended)\n" } else { "" };
                    return Err(format!("{why}{}", screen_dump(&screen)));
                }
            }
        }
    }

    /// Every byte the command printed so far.
    pub fn raw(&self) -> Vec<u8> {
        self.shared.term.lock().unwrap().raw.clone()
    }

    /// Writes `raw()` to `path` (a capture for hs-detect fixtures).
    pub fn save_raw(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.raw()).with_context(|| format!("failed to write {}", path.display()))
    }

    /// Resizes the terminal (TIOCSWINSZ, then SIGWINCH to the command's process group) and the
    /// screen model.
    pub fn resize(&self, rows: u16, cols: u16) {
        {
            let master = self.shared.master.lock().unwrap();
            // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer.
            let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &winsize(rows, cols)) };
            assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
        }
        self.shared.term.lock().unwrap().parser.set_size(rows, cols);
        // SAFETY: plain kill(2) on our child's process group.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGWINCH) };
    }

    /// Sends `sig` to the command's whole process group.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain kill(2) on our child's process group.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), sig) };
    }

    /// Waits up to `timeout` for the command to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exit.or_else(|| self.child.try_wait().ok().flatten()) {
                self.exit = Some(st);
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the command's process group and reaps the command.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            self.signal(libc::SIGKILL);
            self.exit = self.child.wait().ok();
        } else {
            // The leader is gone; its descendants (the native codex) may not be.
            self.signal(libc::SIGKILL);
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.kill();
        // The reader ends at EIO once every process holding the PTY is gone; don't hang on a
        // stray holder.
        if let Some(h) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

/// The screen with row numbers, for failure messages.
fn screen_dump(screen: &str) -> String {
    let mut out = String::from("┌── screen\n");
    for (i, line) in screen.lines().enumerate() {
        out.push_str(&format!("│{i:3} {line}\n"));
    }
    out.push_str("└──");
    out
}

/// A query a terminal must answer, found at the end index in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Query {
    /// `CSI 6 n`: cursor position report.
    CursorPosition,
    /// `CSI c` / `CSI 0 c`: primary device attributes.
    DeviceAttributes,
    /// `OSC 10 ; ?` / `OSC 11 ; ?` (foreground / background colour), with its terminator.
    Colour(u8, &'static [u8]),
}

/// Queries in `buf` as (end index, query), in order.
fn find_queries(buf: &[u8]) -> Vec<(usize, Query)> {
    const PATTERNS: &[(&[u8], Query)] = &[
        (b"\x1b[6n", Query::CursorPosition),
        (b"\x1b[c", Query::DeviceAttributes),
        (b"\x1b[0c", Query::DeviceAttributes),
        (b"\x1b]10;?\x07", Query::Colour(10, b"\x07")),
        (b"\x1b]10;?\x1b\\", Query::Colour(10, b"\x1b\\")),
        (b"\x1b]11;?\x07", Query::Colour(11, b"\x07")),
        (b"\x1b]11;?\x1b\\", Query::Colour(11, b"\x1b\\")),
    ];
    let mut found = Vec::new();
    for i in 0..buf.len() {
        for (pat, q) in PATTERNS {
            if buf[i..].starts_with(pat) {
                found.push((i + pat.len(), q.clone()));
            }
        }
    }
    found
}

fn answer(q: &Query, screen: &vt100::Screen) -> Vec<u8> {
    match q {
        Query::CursorPosition => {
            let (row, col) = screen.cursor_position();
            format!("\x1b[{};{}R", row + 1, col + 1).into_bytes()
        }
        Query::DeviceAttributes => b"\x1b[?62;22c".to_vec(),
        Query::Colour(n, term) => {
            let rgb = if *n == 10 { "ffff/ffff/ffff" } else { "0000/0000/0000" };
            let mut v = format!("\x1b]{n};rgb:{rgb}").into_bytes();
            v.extend_from_slice(term);
            v
        }
    }
}

const QUERY_TAIL: usize = 16;

fn read_loop(mut master: File, shared: &Shared) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO: every holder of the PTY's other side is gone
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut replies = Vec::new();
        {
            let mut term = shared.term.lock().unwrap();
            term.raw.extend_from_slice(chunk);
            let tail_len = term.tail.len();
            let mut scan = std::mem::take(&mut term.tail);
            scan.extend_from_slice(chunk);
            let mut fed = 0; // bytes of `chunk` given to the parser
            for (end, q) in find_queries(&scan) {
                if end <= tail_len {
                    continue;
                }
                let upto = end - tail_len;
                term.parser.process(&chunk[fed..upto]);
                fed = upto;
                replies.push(answer(&q, term.parser.screen()));
            }
            term.parser.process(&chunk[fed..]);
            term.tail = scan[scan.len().saturating_sub(QUERY_TAIL)..].to_vec();
        }
        shared.changed.notify_all();
        if !replies.is_empty() {
            let mut m = shared.master.lock().unwrap();
            for r in replies {
                let _ = m.write_all(&r);
            }
            let _ = m.flush();
        }
    }
    shared.term.lock().unwrap().eof = true;
    shared.changed.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).env_clear().env("PATH", "/usr/bin:/bin");
        c
    }

    #[test]
    fn runs_under_a_pty_of_the_given_size_and_reads_keys() {
        let mut t =
            Tui::spawn(sh("stty size; tty -s && echo tty-ok; read line; echo \"got:$line\"; sleep 0.2"), 24, 90);
        t.wait_for_text("24 90", Duration::from_secs(10)).unwrap();
        t.wait_for_text("tty-ok", Duration::from_secs(10)).unwrap();
        t.submit("hello world");
        t.wait_for_text("got:hello world", Duration::from_secs(10)).unwrap();
        let st = t.wait_exit(Duration::from_secs(10)).expect("exit");
        assert!(st.success());
        assert!(String::from_utf8_lossy(&t.raw()).contains("got:hello world"));
    }

    #[test]
    fn answers_cursor_position_queries_and_resizes() {
        // Ask for the cursor position after moving to row 5, col 10, and print the reply.
        let script = r#"stty raw -echo; printf '\033[5;10H\033[6n'; r=$(dd bs=1 count=7 2>/dev/null | od -An -c | tr -d ' \n'); stty sane; printf '\r\nreply:%s\r\n' "$r"; read x; stty size"#;
        let mut t = Tui::spawn(sh(script), 20, 60);
        t.wait_for_text(r"reply:033[5;10R", Duration::from_secs(10)).unwrap();
        t.resize(30, 100);
        t.send(b"\r");
        t.wait_for_text("30 100", Duration::from_secs(10)).unwrap();
        assert!(t.wait_exit(Duration::from_secs(10)).is_some());
    }

    #[test]
    fn wrapped_text_matches_and_timeouts_dump_the_screen() {
        let t = Tui::spawn(sh("printf 'You have hit\\n   your limit https://\\nexample.com/x\\n'; sleep 30"), 10, 40);
        t.wait_for_text("You have hit your limit https://example.com/x", Duration::from_secs(10)).unwrap();
        assert!(!t.screen_has("You have hit your limit https://example.org"));
        let err = t.wait_for_text("never shown", Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("never shown") && err.contains("your limit"), "{err}");
    }

    #[test]
    fn queries_are_found_with_their_end() {
        let q = find_queries(b"ab\x1b[6nxx\x1b]11;?\x1b\\");
        assert_eq!(q, vec![(6, Query::CursorPosition), (16, Query::Colour(11, b"\x1b\\"))]);
    }
}
