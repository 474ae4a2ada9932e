//! hs-detect: report the moment codex hits an account limit, from its output and its rollout.

use anyhow::{bail, Context, Result};
use clap::Parser;
use shared::cli::{self, EXIT_NONE, EXIT_OK};
use shared::detect::{Clock, DetectOptions, Detector, Format, ScreenModel, Zone};
use shared::duration;
use shared::events::{self, Event};
use shared::rollout::{self, FollowOptions, Follower};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Report the moment codex hits an account limit (usage limit, model limit, workspace credits,
/// spend cap, quota, plan without Codex, or a plain 429 retry failure), with its reset time.
///
/// Reads codex's output on stdin: raw TUI terminal bytes, `codex exec` text or `codex exec --json`
/// lines. Writes one JSON object per line:
/// {"type":"limit","kind":…,"text":…,"resets_at":…,"source":"screen|text|exec_json|rollout","account":…,"at":…}
/// and, from a rollout, {"type":"rate_limits","primary":{…},"secondary":{…},…}.
///
/// In the TUI only codex's own error banner counts (a row starting with `■ ` at column 0), and
/// each banner text once: the same words in an answer, a diff, a file, shell output or your
/// prompt, the "Approaching rate limits" popup and the `⚠ 5h limit` status line never fire, and
/// neither does a banner moving or being repainted. SIGUSR1 sets a mark: banners on the screen
/// before it (a `codex resume` redrawing the old conversation) stay old.
///
/// Exit status like grep: 0 a limit was seen, 1 none, 2 error.
#[derive(Parser, Debug)]
#[command(
    name = "hs-detect",
    version,
    after_help = "Examples:\n  codex exec 'fix the tests' 2>&1 | hs-detect --tee --account acc1 --events limits.jsonl\n  codex exec --json 'hi' | hs-detect --format json\n  hs-detect --format tui --size 50x200 < capture.bin\n  hs-detect --rollout ~/.codex/sessions/2026/11/24/rollout-….jsonl --from-start < /dev/null\n  hs-detect --rollout FILE --follow --account acc1 < /dev/null   # new records, until killed"
)]
struct Cli {
    /// What stdin carries: tui (raw terminal bytes), text (`codex exec` output) or json
    /// (`codex exec --json`). Default: decided from the first bytes (`{` json, terminal control
    /// sequences tui, else text).
    #[arg(long, value_name = "FORMAT", value_parser = ["tui", "text", "json"])]
    format: Option<String>,

    /// The terminal size the TUI drew for, ROWSxCOLS (tui only). Must match the terminal codex
    /// ran in, or wrapped rows are read wrong.
    #[arg(long, value_name = "ROWSxCOLS", default_value = "24x80")]
    size: String,

    /// Also follow this session rollout file (like `tail -f`) and report its limit records and
    /// rate-limit telemetry. Reading stops when stdin ends (after a last read of the file),
    /// unless --follow.
    #[arg(long, value_name = "FILE")]
    rollout: Option<PathBuf>,

    /// Only report rollout records appended after hs-detect started: the default. The limits
    /// already in the file are then old on the screen too (a resumed session redraws them).
    #[arg(long, requires = "rollout", conflicts_with = "from_start")]
    from_end: bool,

    /// Report the whole rollout file, the records already in it too (for replaying a session).
    #[arg(long, requires = "rollout")]
    from_start: bool,

    /// Keep following the rollout after stdin ends, until killed (SIGTERM/SIGINT end it
    /// normally, with the usual exit status). Use with `< /dev/null`.
    #[arg(long, requires = "rollout")]
    follow: bool,

    /// Stamp every event with this account name.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,

    /// Copy stdin to stdout unchanged; events then go to --events FILE, else to stderr.
    #[arg(long)]
    tee: bool,

    /// With --tee: append events to FILE (created if missing; `/dev/fd/3` for a file
    /// descriptor).
    #[arg(long, value_name = "FILE", requires = "tee")]
    events: Option<PathBuf>,

    /// Report nothing until the first SIGUSR1 (a mark): for a `codex resume`, whose redraw of
    /// the old conversation must not count. Every SIGUSR1 sets a mark, taking effect from the
    /// next read of stdin.
    #[arg(long)]
    wait_for_mark: bool,

    /// A limit message already handled elsewhere: the screen never reports a banner with this
    /// text (compared without whitespace). Repeatable. E.g. for a detector restarted at a new
    /// size, which sees the old banner redrawn.
    #[arg(long, value_name = "TEXT")]
    known: Vec<String>,

    /// Pretend the current time is TIME (RFC 3339 or unix seconds), for replays and tests:
    /// it sets `at` and the base of `try again at 7:48 PM` (read in the local time zone).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,

    /// The terminal-screen model for tui input: `term` (built in, the default) or `vt100` (the
    /// vt100 crate, two to three times slower; shows the same screen, kept to compare with).
    #[arg(long, value_name = "MODEL", default_value = "term", value_parser = ["term", "vt100"])]
    screen_model: String,
}

fn parse_size(text: &str) -> Result<(u16, u16)> {
    let bad = || anyhow::anyhow!("invalid --size {text:?}: use ROWSxCOLS like 24x80");
    let (r, c) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (rows, cols): (u16, u16) = (r.trim().parse().map_err(|_| bad())?, c.trim().parse().map_err(|_| bad())?);
    if rows == 0 || cols < 2 {
        return Err(bad());
    }
    Ok((rows, cols))
}

/// Where events go, one flushed line each; counts limits for the exit status.
struct Sink {
    out: Box<dyn Write>,
    limits: usize,
}

impl Sink {
    fn write(&mut self, evs: Vec<Event>) -> Result<()> {
        for ev in evs {
            if matches!(ev, Event::Limit(_)) {
                self.limits += 1;
            }
            let mut line = events::to_line(&ev).into_bytes();
            line.push(b'\n');
            self.out.write_all(&line)?;
            self.out.flush()?;
        }
        Ok(())
    }
}

fn main() {
    cli::run_main("hs-detect", || {
        let args = Cli::parse();
        run(args)
    })
}

fn run(args: Cli) -> Result<i32> {
    let (rows, cols) = parse_size(&args.size)?;
    let clock = match &args.now {
        Some(t) => Clock::Fixed(duration::parse_time(t).context("invalid --now")?),
        None => Clock::System,
    };
    let format = args.format.as_deref().map(str::parse::<Format>).transpose()?;
    let mut detector = Detector::new(DetectOptions {
        format,
        rows,
        cols,
        account: args.account.clone(),
        zone: Zone::Local,
        clock,
        wait_for_mark: args.wait_for_mark,
        screen_model: if args.screen_model == "vt100" { ScreenModel::Vt100 } else { ScreenModel::Term },
    });
    for text in &args.known {
        detector.add_known_text(text);
    }
    let from_end = !args.from_start;
    if let (Some(path), true) = (&args.rollout, from_end) {
        // A resumed session: limits already recorded are old, even when the TUI redraws them.
        for text in rollout::limit_texts(path)? {
            detector.add_known_text(&text);
        }
    }
    let mut follower = match &args.rollout {
        Some(path) => Some(Follower::open(
            path,
            FollowOptions { from_end, account: args.account.clone(), zone: Zone::Local, clock },
        )?),
        None => None,
    };
    let out: Box<dyn Write> = match (&args.tee, &args.events) {
        (false, _) => Box::new(std::io::stdout()),
        (true, Some(path)) => Box::new(
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .with_context(|| format!("failed to open {}", path.display()))?,
        ),
        (true, None) => Box::new(std::io::stderr()),
    };
    let mut sink = Sink { out, limits: 0 };

    // With --follow hs-detect runs until killed: a signal ends it normally, so the exit status
    // still tells what was seen. (Without, the default action is right: stdin ending ends it.)
    let stop = Arc::new(AtomicBool::new(false));
    if args.follow {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
            signal_hook::flag::register(sig, stop.clone()).context("failed to handle signals")?;
        }
    }
    let mark = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, mark.clone()).context("failed to handle SIGUSR1")?;

    // Unbuffered, so waiting on the descriptor never misses bytes held in a buffer.
    let mut input = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned().context("failed to read stdin")?);
    let mut tee = std::io::stdout().lock();
    let mut buf = vec![0u8; READ_MAX];
    let mut ended = false;
    while !stop.load(Ordering::Relaxed) && !ended {
        // With a rollout to follow, wait for stdin at most 250 ms at a time.
        if follower.is_some() && !wait_readable(&input, 250)? {
            poll_rollout(&mut follower, &mut sink)?;
            continue;
        }
        let n = match input.read(&mut buf[..READ_CHUNK]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("failed to read stdin"),
        };
        if mark.swap(false, Ordering::Relaxed) {
            detector.set_mark();
        }
        if n == 0 {
            break;
        }
        // Whatever else has arrived already goes in the same feed: a flood of output is read
        // in large pieces, and the screen is scanned once per piece, not once per small write.
        let mut n = n;
        while n + READ_CHUNK <= READ_MAX && wait_readable(&input, 0)? {
            match input.read(&mut buf[n..n + READ_CHUNK]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(m) => n += m,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("failed to read stdin"),
            }
        }
        if args.tee {
            tee.write_all(&buf[..n])?;
            tee.flush()?;
        }
        sink.write(detector.feed(&buf[..n]))?;
        poll_rollout(&mut follower, &mut sink)?;
    }
    sink.write(detector.finish())?;
    poll_rollout(&mut follower, &mut sink)?;
    if args.follow {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(250));
            poll_rollout(&mut follower, &mut sink)?;
        }
    }
    Ok(if sink.limits > 0 { EXIT_OK } else { EXIT_NONE })
}

/// One read of stdin, and the most one feed takes when more is waiting.
const READ_CHUNK: usize = 64 * 1024;
const READ_MAX: usize = 1024 * 1024;

fn poll_rollout(follower: &mut Option<Follower>, sink: &mut Sink) -> Result<()> {
    match follower {
        Some(f) => sink.write(f.poll()?),
        None => Ok(()),
    }
}

/// Whether stdin has data (or EOF) within `ms`; false on timeout or a signal.
fn wait_readable(input: &impl AsFd, ms: u16) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => bail!("failed to wait for stdin: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("24x80").unwrap(), (24, 80));
        assert_eq!(parse_size("50X200").unwrap(), (50, 200));
        for bad in ["", "24", "0x80", "24x1", "axb", "24x80x3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
