//! The pseudo-terminal hs-run puts codex on, the user's terminal in raw mode, and the signal
//! self-pipe of the poll loop.
//!
//! No `forkpty`: `openpty`, then `std::process::Command` with a `pre_exec` that resets signal
//! dispositions and the mask, calls `setsid()` and makes the PTY the controlling terminal.

use anyhow::{Context, Result};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Signals the poll loop handles; they are reset to their defaults in every child.
pub const HANDLED_SIGNALS: [libc::c_int; 5] =
    [libc::SIGWINCH, libc::SIGCHLD, libc::SIGTERM, libc::SIGHUP, libc::SIGINT];

/// The window size of the terminal on `fd`, when it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut ws = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws as *mut Winsize) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some(ws)
}

/// Sets the window size of the terminal on `fd` (the kernel sends SIGWINCH to its foreground group).
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &Winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const Winsize) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot set the pseudo-terminal's window size");
    }
    Ok(())
}

/// True when `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// A pseudo-terminal pair. The parent keeps `master`; the child gets `slave` as stdin/out/err.
pub struct Pty {
    pub master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    /// Opens a pair with the given size (none: the kernel default).
    pub fn open(size: Option<&Winsize>) -> Result<Pty> {
        let pair = openpty(size, None).context("cannot open a pseudo-terminal")?;
        for fd in [&pair.master, &pair.slave] {
            set_cloexec(fd.as_fd())?;
        }
        Ok(Pty { master: pair.master, slave: pair.slave })
    }

    /// Starts `cmd` with the slave side as its controlling terminal and stdin/stdout/stderr, in
    /// its own session. The parent's copy of the slave is closed, so EIO on the master means
    /// the child side is gone.
    pub fn spawn(self, cmd: &mut Command) -> Result<(OwnedFd, Child)> {
        let stdio = |fd: &OwnedFd| -> Result<Stdio> {
            Ok(Stdio::from(fd.try_clone().context("cannot duplicate the pseudo-terminal")?))
        };
        cmd.stdin(stdio(&self.slave)?).stdout(stdio(&self.slave)?).stderr(stdio(&self.slave)?);
        // SAFETY: the closure only makes async-signal-safe calls (sigprocmask, signal, setsid, ioctl).
        unsafe {
            cmd.pre_exec(|| {
                reset_signals_in_child();
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let spawned = cmd.spawn();
        // `Command` keeps its Stdio until it is dropped: release our copies of the slave now, or
        // the master never reports EIO when the child's side closes.
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = spawned.with_context(|| format!("cannot start {program}"))?;
        drop(self.slave);
        Ok((self.master, child))
    }
}

/// For `pre_exec`: default dispositions for the signals we handle (and SIGPIPE, SIGQUIT and the
/// job-control ones, which a parent may have ignored), and an empty signal mask.
///
/// # Safety
/// Only call between fork and exec.
pub unsafe fn reset_signals_in_child() {
    // SAFETY: async-signal-safe libc calls on a freshly forked child.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in HANDLED_SIGNALS
            .iter()
            .chain(&[libc::SIGPIPE, libc::SIGQUIT, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU])
        {
            libc::signal(*sig, libc::SIG_DFL);
        }
    }
}

pub fn set_cloexec(fd: BorrowedFd<'_>) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).context("fcntl(FD_CLOEXEC)")?;
    Ok(())
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("fcntl(F_SETFL)")?;
    Ok(())
}

/// The termios to restore, shared with the panic hook.
static SAVED: OnceLock<Mutex<Option<(RawFd, Termios)>>> = OnceLock::new();

fn saved() -> &'static Mutex<Option<(RawFd, Termios)>> {
    SAVED.get_or_init(|| Mutex::new(None))
}

fn restore_saved() {
    if let Ok(mut s) = saved().lock() {
        if let Some((fd, t)) = s.take() {
            // SAFETY: fd is the process's stdin-like terminal fd, open for the whole run.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = termios::tcsetattr(fd, SetArg::TCSADRAIN, &t);
        }
    }
}

/// The user's terminal in raw mode. Dropping it (or a panic) puts the saved settings back.
pub struct RawGuard {
    _private: (),
}

impl RawGuard {
    /// Saves the settings of the terminal on `fd` and switches it to raw mode.
    /// `fd` must stay open for as long as the guard lives (hs-run passes stdin).
    pub fn enter(fd: BorrowedFd<'_>) -> Result<RawGuard> {
        let orig = termios::tcgetattr(fd).context("cannot read the terminal settings")?;
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_saved();
                prev(info)
            }));
        });
        *saved().lock().unwrap_or_else(|e| e.into_inner()) = Some((fd.as_raw_fd(), orig.clone()));
        let mut raw = orig;
        termios::cfmakeraw(&mut raw);
        if let Err(e) = termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw) {
            restore_saved();
            return Err(e).context("cannot switch the terminal to raw mode");
        }
        Ok(RawGuard { _private: () })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore_saved();
    }
}

/// What a terminal program may leave switched on when it is killed before cleaning up (codex's
/// own exit sequence, seen on 0.169.0): mouse reporting, keyboard protocols, alternate screen,
/// bracketed paste, focus events, cursor shape and visibility.
pub const TERMINAL_RESET: &str = "\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1007l\x1b[?1049l\x1b[<u\x1b[>4;0m\x1b[?2004l\x1b[?1004l\x1b[0 q\x1b[?25h\x1b[0m";

/// A self-pipe fed by signal handlers, plus one flag per signal, for a poll loop.
pub struct SignalPipe {
    read: OwnedFd,
    flags: Vec<(libc::c_int, Arc<AtomicBool>)>,
    ids: Vec<signal_hook::SigId>,
}

impl SignalPipe {
    pub fn new(signals: &[libc::c_int]) -> Result<SignalPipe> {
        let (read, write) = nix::unistd::pipe().context("cannot create a pipe")?;
        for fd in [&read, &write] {
            set_cloexec(fd.as_fd())?;
            set_nonblocking(fd.as_fd())?;
        }
        let write = Arc::new(write);
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for &sig in signals {
            let flag = Arc::new(AtomicBool::new(false));
            ids.push(signal_hook::flag::register(sig, flag.clone()).context("cannot install a signal handler")?);
            ids.push(
                signal_hook::low_level::pipe::register_raw(sig, write.as_raw_fd())
                    .context("cannot install a signal handler")?,
            );
            flags.push((sig, flag));
        }
        // The write end must outlive the handlers: keep it for the life of the process.
        std::mem::forget(write);
        Ok(SignalPipe { read, flags, ids })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe and returns the signals that arrived since the last call.
    pub fn take(&self) -> Vec<libc::c_int> {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
        self.flags.iter().filter(|(_, f)| f.swap(false, Ordering::SeqCst)).map(|(s, _)| *s).collect()
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The outcome of one non-blocking `read(2)`.
pub enum Got {
    Data(usize),
    /// Nothing now (EAGAIN).
    Nothing,
    /// EOF or an error; on a PTY master EIO means the child side closed.
    Closed,
}

/// Writes all of `bytes` to `fd`, waiting for room when it is non-blocking.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, 100u16);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub fn read_some(fd: i32, buf: &mut [u8]) -> Got {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return Got::Closed,
            Ok(n) => return Got::Data(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Got::Nothing,
            Err(_) => return Got::Closed,
        }
    }
}
