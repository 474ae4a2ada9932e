//! A fake `codex` for hs-run's tests (feature `test-fakes`, never installed).
//!
//! Every start appends one JSON line to `$FAKE_CODEX_LOG`: `{"n", "model", "args", "codex_home",
//! "cwd", "account_id", "session_id", "stdin"}`; `n` counts model sessions (TUI and exec) only.
//! Like the real codex 0.169.0 it writes a rollout under `$CODEX_HOME/sessions/YYYY/MM/DD/` whose
//! first line is `session_meta`, keeps it open while it runs, and appends to the same file on
//! `resume <id>` (redrawing the old conversation, old limit banner included).
//!
//! Behaviour per model session number `n` (lists like `1,3`, or `all`):
//! - `FAKE_CODEX_LIMIT`: sessions that hit the usage limit (screen banner drawn with escape codes
//!   plus rollout records; exec: `ERROR: …` on stderr, exit 1)
//! - `FAKE_CODEX_LIMIT_DELAY_MS` (default 300): when the TUI banner appears (`key`: when `l` is typed)
//! - `FAKE_CODEX_SCREEN=0` / `FAKE_CODEX_ROLLOUT=0`: leave the limit off the screen / rollout
//! - `FAKE_CODEX_RESET`: the reset time shown (default: the reset time, `8:13 PM` style)
//! - `FAKE_CODEX_RESET_SECS`: the reset time in seconds from now, or a list by n (default 3600 + 600n)
//! - `FAKE_CODEX_IGNORE_CTRL_C`: sessions that ignore Ctrl-C (hs-run must escalate to SIGTERM)
//! - `FAKE_CODEX_SHUTDOWN_MS`: how long the TUI takes to shut down after its quitting Ctrl-C; a
//!   Ctrl-C meanwhile cuts it short and leaves `$FAKE_CODEX_LOG.cut`
//! - `FAKE_CODEX_DROP_RESUME_PROMPT`: resumed TUI sessions that never send the prompt given to
//!   `resume` (every other one sends it as a turn at once: `task_started` and the user message)
//! - `FAKE_CODEX_EXIT`: exit code on quit (`q`, or Ctrl-C twice) and for a finished exec (default 0)
//! - `FAKE_CODEX_SIGNAL`: the signal the TUI raises on itself when `d` is typed (default 9)
//! - `FAKE_CODEX_EXEC_SLEEP_MS`: how long an exec session works before answering
//! - `FAKE_CODEX_FLOOD_KB`: the TUI prints this many KiB of text lines just before its limit banner
//! - `FAKE_CODEX_NO_DAEMON_FLAG=0`: `--help` does not list `--no-daemon`
//! - `FAKE_CODEX_VERSION`: the version `--version` names (default 0.169.0)
//!
//! Per account (account ids, comma-separated), like the real codex 0.169.0 against the mock:
//! - `FAKE_CODEX_DEAD_LOGIN`: every turn fails with "Your access token could not be refreshed
//!   because your refresh token was revoked…" (`task_complete` error `unauthorized`; the TUI shows
//!   it and stays open; exec prints `ERROR: …` and exits 1)
//! - `FAKE_CODEX_SIGN_IN`: the TUI draws codex's first-run sign-in screen (word by word, as
//!   codex does) and waits, no session begun (codex 0.169.0 does so now and then on a revoked login)
//! - `FAKE_CODEX_REFUSE_FOREIGN`: resuming a session another account began fails: its turn with
//!   the backend's 400 `invalid_encrypted_content` body (as the dead login does), or, with
//!   `FAKE_CODEX_ACCOUNT_CHECK=1`, at once: `Error: thread/resume failed: This thread was created
//!   with a different ChatGPT account…` and exit 1, nothing written
//!
//! Turns of the TUI: Enter submits the composer (`task_started`, the user message, then, as the
//! backend's answer arrives, a `token_count`); `FAKE_CODEX_TURN_MS` (default 100) later the
//! answer `• fake answer to: <text>` is drawn and `task_complete` written.
//! - `FAKE_CODEX_USED`: the 5 h window's used percent in the turns' `token_count`, a list by n
//!   (default 42.5); `FAKE_CODEX_USED_RESETS_IN`: its reset in seconds from now (negative: already
//!   reset, a stale reading; default the session's reset time)
//! - `FAKE_CODEX_WINDOWS=weekly`: the plan reports only a weekly window (as `primary`)
//! - `FAKE_CODEX_READY_MS`: the TUI draws its composer (`› ready`, the cursor after it) this long
//!   after it starts; plain keys that arrive before are appended to `$FAKE_CODEX_LOG.early`

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SUBCOMMANDS: &[&str] = &["exec", "e", "resume", "fork", "review", "login", "logout", "mcp", "completion", "features", "doctor", "apply", "update", "help"];
const VALUE_OPTS: &[&str] = &["-c", "--config", "-m", "--model", "-s", "--sandbox", "-C", "--cd", "-p", "--profile", "-a", "--ask-for-approval", "--add-dir", "--color", "-o", "--output-last-message", "--enable", "--disable", "-i", "--image", "--base", "--commit", "--title"];

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn selected(var: &str, n: u64) -> bool {
    env(var).is_some_and(|v| v == "all" || v.split(',').any(|x| x.trim().parse() == Ok(n)))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        record(&args, false, None, "");
        println!("codex-cli {} (fake)", env("FAKE_CODEX_VERSION").unwrap_or_else(|| "0.169.0".into()));
        return;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        record(&args, false, None, "");
        println!("Codex CLI (fake)\n\nOptions:\n  -m, --model <MODEL>\n      --search");
        if env("FAKE_CODEX_NO_DAEMON_FLAG").as_deref() != Some("0") {
            println!("      --no-daemon");
        }
        return;
    }
    // positionals (options and their values skipped)
    let mut pos = Vec::new();
    let mut i = 0;
    let mut json = false;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            pos.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a == "--json" {
            json = true;
        }
        if a.starts_with('-') && a.len() > 1 {
            i += if VALUE_OPTS.contains(&a.as_str()) { 2 } else { 1 };
            continue;
        }
        pos.push(a.clone());
        i += 1;
    }
    let sub: Vec<&str> = pos.iter().map(String::as_str).take_while(|p| SUBCOMMANDS.contains(p)).take(2).collect();
    let rest: Vec<String> = pos[sub.len()..].to_vec();
    match sub.as_slice() {
        [] | ["resume"] | ["fork"] => tui(&args, &sub, &rest),
        ["exec" | "e", ..] | ["review"] => exec(&args, &sub, &rest, json),
        _ => {
            record(&args, false, None, "");
            println!("fake codex: {}", args.join(" "));
            std::process::exit(env("FAKE_CODEX_EXIT").and_then(|c| c.parse().ok()).unwrap_or(0));
        }
    }
}

fn log_path() -> Option<PathBuf> {
    env("FAKE_CODEX_LOG").map(PathBuf::from)
}

/// Appends this start to the log; returns the model-session number.
fn record(args: &[String], model: bool, session: Option<&str>, stdin: &str) -> u64 {
    let Some(log) = log_path() else { return 1 };
    let prev = std::fs::read_to_string(&log).unwrap_or_default();
    let n = 1 + prev
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["model"] == true)
        .count() as u64;
    let home = std::env::var_os("CODEX_HOME").map(PathBuf::from);
    let line = serde_json::json!({
        "n": if model { n } else { 0 },
        "model": model,
        "args": args,
        "codex_home": home,
        "cwd": std::env::current_dir().ok(),
        "account_id": home.as_deref().and_then(account_id),
        "session_id": session,
        "stdin": stdin,
    });
    shared::fsutil::append_line(&log, &line.to_string()).expect("fake codex log");
    n
}

fn current_account() -> Option<String> {
    std::env::var_os("CODEX_HOME").and_then(|h| account_id(Path::new(&h)))
}

fn account_listed(var: &str) -> bool {
    let me = current_account().unwrap_or_default();
    env(var).is_some_and(|v| v.split(',').any(|a| a.trim() == me))
}

const DEAD_LOGIN_TEXT: &str = "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.";
const REFUSED_TEXT: &str = r#"{"error":{"code":"invalid_encrypted_content","message":"The encrypted content gAAAAABpFake…5Q== could not be verified. Reason: Encrypted content could not be decrypted or parsed.","param":null,"type":"invalid_request_error"}}"#;

/// How a turn of this session fails, if it does: (message, codex_error_info).
fn turn_failure(resumed_foreign: bool) -> Option<(&'static str, &'static str)> {
    if account_listed("FAKE_CODEX_DEAD_LOGIN") {
        Some((DEAD_LOGIN_TEXT, "unauthorized"))
    } else if resumed_foreign && account_listed("FAKE_CODEX_REFUSE_FOREIGN") {
        Some((REFUSED_TEXT, "other"))
    } else {
        None
    }
}

/// Resuming session `id`: began by another account (its `session_meta` says which)?
fn foreign(id: Option<&str>) -> bool {
    let Some(path) = id.and_then(Rollout::find) else { return false };
    let first = std::fs::read_to_string(path).unwrap_or_default().lines().next().unwrap_or("").to_string();
    let creator = serde_json::from_str::<serde_json::Value>(&first).ok().and_then(|v| v["payload"]["creator_account_id"].as_str().map(String::from));
    creator.is_some() && creator != current_account()
}

/// `--enable cli_resume_account_check` refusing another account's thread, before anything runs.
fn account_check(args: &[String], id: Option<&str>) {
    if foreign(id) && account_listed("FAKE_CODEX_REFUSE_FOREIGN") && env("FAKE_CODEX_ACCOUNT_CHECK").as_deref() == Some("1") {
        record(args, true, id, "");
        eprintln!("Error: thread/resume: thread/resume failed: This thread was created with a different ChatGPT account or workspace. Sign in with the original account to resume it. (code -32600)");
        std::process::exit(1);
    }
}

fn account_id(home: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(home.join("auth.json")).ok()?).ok()?;
    v["tokens"]["account_id"].as_str().map(String::from)
}

fn new_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let ms = now.as_millis() as u64;
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        ms >> 16,
        ms & 0xffff,
        std::process::id() & 0xfff,
        now.subsec_nanos() & 0xfff,
        (now.subsec_nanos() as u64) << 8 | (std::process::id() as u64 & 0xff)
    )
}

struct Rollout {
    file: std::fs::File,
    id: String,
    /// Limit texts already in the file (a resumed session redraws them).
    old_limits: Vec<String>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Rollout {
    fn sessions() -> PathBuf {
        PathBuf::from(std::env::var_os("CODEX_HOME").expect("CODEX_HOME")).join("sessions")
    }

    fn find(id: &str) -> Option<PathBuf> {
        let mut stack = vec![Rollout::sessions()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n.to_string_lossy().contains(id)) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// Appends to the rollout of `resume`'s id, or starts a new one.
    fn open(resume: Option<&str>, originator: &str) -> Rollout {
        if let Some(id) = resume {
            let path = Rollout::find(id).unwrap_or_else(|| {
                eprintln!("Error: thread/resume failed: no rollout found for thread id {id}");
                std::process::exit(1)
            });
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let old_limits = text
                .lines()
                .filter(|l| l.contains("usage_limit_exceeded"))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["payload"]["error"]["message"].as_str().map(String::from))
                .collect();
            let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            return Rollout { file, id: id.to_string(), old_limits };
        }
        let id = new_id();
        let now = chrono::Utc::now();
        let dir = Rollout::sessions().join(now.format("%Y/%m/%d").to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("rollout-{}-{id}.jsonl", now.format("%Y-%m-%dT%H-%M-%S")));
        let file = std::fs::File::create(&path).unwrap();
        let mut r = Rollout { file, id: id.clone(), old_limits: Vec::new() };
        let cwd = std::env::current_dir().unwrap();
        let creator = current_account();
        r.line(serde_json::json!({"type":"session_meta","payload":{"id":id,"session_id":id,"timestamp":now_rfc3339(),"cwd":cwd,"originator":originator,"cli_version":"0.169.0","creator_account_id":creator}}));
        r
    }

    /// A turn that fails with `text` (a dead login, a refused thread).
    fn failed_turn(&mut self, text: &str, info: &str) {
        self.line(serde_json::json!({"type":"event_msg","payload":{"type":"task_complete","last_agent_message":null,"error":{"message":text,"codex_error_info":info}}}));
    }

    fn line(&mut self, mut v: serde_json::Value) {
        v["timestamp"] = now_rfc3339().into();
        writeln!(self.file, "{v}").unwrap();
        self.file.flush().unwrap();
    }

    /// A turn's `token_count` as `FAKE_CODEX_USED` / `FAKE_CODEX_WINDOWS` say.
    fn turn_usage(&mut self, n: u64, resets_at: i64) {
        let used = env("FAKE_CODEX_USED")
            .and_then(|s| {
                let list: Vec<f64> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                list.get(n as usize - 1).or(list.last()).copied()
            })
            .unwrap_or(42.5);
        let reset = env("FAKE_CODEX_USED_RESETS_IN")
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(resets_at, |secs| chrono::Utc::now().timestamp() + secs);
        let weekly_only = env("FAKE_CODEX_WINDOWS").as_deref() == Some("weekly");
        let (primary, secondary) = if weekly_only {
            (serde_json::json!({"used_percent":used,"window_minutes":10080,"resets_at":reset}), serde_json::Value::Null)
        } else {
            (
                serde_json::json!({"used_percent":used,"window_minutes":300,"resets_at":reset}),
                serde_json::json!({"used_percent":12.0,"window_minutes":10080,"resets_at":reset + 86400}),
            )
        };
        self.line(serde_json::json!({"type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"limit_id":"codex","primary":primary,"secondary":secondary,"plan_type":null}}}));
    }

    fn usage(&mut self, used: f64, resets_at: i64) {
        self.line(serde_json::json!({"type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"limit_id":"codex","primary":{"used_percent":used,"window_minutes":300,"resets_at":resets_at},"secondary":{"used_percent":12.0,"window_minutes":10080,"resets_at":resets_at + 86400},"plan_type":null}}}));
    }

    fn limit(&mut self, text: &str, resets_at: i64) {
        self.usage(100.0, resets_at);
        self.line(serde_json::json!({"type":"event_msg","payload":{"type":"task_complete","last_agent_message":null,"error":{"message":text,"codex_error_info":"usage_limit_exceeded"}}}));
    }
}

/// The reset time for session `n`: unix seconds and how codex shows it.
fn reset_time(n: u64) -> (i64, String) {
    // a list gives session n the n-th entry (the last one repeats)
    let secs = env("FAKE_CODEX_RESET_SECS")
        .and_then(|s| {
            let list: Vec<i64> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            list.get(n as usize - 1).or(list.last()).copied()
        })
        .unwrap_or(3600 + 600 * n as i64);
    let t = chrono::Utc::now() + chrono::Duration::seconds(secs);
    let shown = env("FAKE_CODEX_RESET").unwrap_or_else(|| t.with_timezone(&chrono::Local).format("%-I:%M %p").to_string());
    (t.timestamp(), shown)
}

fn limit_text(shown: &str) -> String {
    format!("You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at {shown}.")
}

fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes()).unwrap();
    o.flush().unwrap();
}

fn tui(args: &[String], sub: &[&str], rest: &[String]) {
    let resume = (sub == ["resume"]).then(|| rest.first().cloned()).flatten();
    account_check(args, resume.as_deref());
    if account_listed("FAKE_CODEX_SIGN_IN") {
        sign_in_screen(args);
    }
    let failure = turn_failure(foreign(resume.as_deref()));
    let mut rollout = Rollout::open(resume.as_deref(), "codex-tui");
    let n = record(args, true, Some(&rollout.id), "");
    let stdin = std::io::stdin();
    let saved = raw_mode();
    let winch = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(libc::SIGWINCH, winch.clone()).unwrap();
    out("\x1b[?1049h\x1b[?2004h\x1b[?25l\x1b[2J\x1b[1;1H");
    let size = || {
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
        format!("{}x{}", ws.ws_row, ws.ws_col)
    };
    out(&format!("\x1b[1;1H>_ Fake Codex (session {}) size {}\x1b[K", rollout.id, size()));
    let mut row = 3;
    for old in rollout.old_limits.clone() {
        // the resumed TUI redraws the old conversation, old banner included
        out(&format!("\x1b[{row};1H\x1b[31m■\x1b[0m \x1b[1m{old}\x1b[0m"));
        row += 3;
    }
    let (resets_at, shown) = reset_time(n);
    rollout.usage(42.5, resets_at);
    let on_key = env("FAKE_CODEX_LIMIT_DELAY_MS").as_deref() == Some("key");
    let mut limit_at = (selected("FAKE_CODEX_LIMIT", n) && !on_key).then(|| {
        Instant::now() + Duration::from_millis(env("FAKE_CODEX_LIMIT_DELAY_MS").and_then(|d| d.parse().ok()).unwrap_or(300))
    });
    let mut limited = false;
    let ignore_cc = selected("FAKE_CODEX_IGNORE_CTRL_C", n);
    let code: i32 = env("FAKE_CODEX_EXIT").and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut ctrl_c = 0;
    let mut typed = String::new();
    let prompt_row = row + 1;
    if let Some(ms) = env("FAKE_CODEX_READY_MS").and_then(|d| d.parse::<u64>().ok()) {
        // not ready yet: plain keys that come now are logged as early
        read_for(ms, |got| {
            let plain: Vec<u8> = got.iter().copied().filter(|b| *b != 0x1b).collect();
            if let (Some(log), false) = (env("FAKE_CODEX_LOG"), plain.is_empty()) {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(format!("{log}.early")).unwrap();
                f.write_all(&plain).unwrap();
            }
            false
        });
    }
    out(&format!("\x1b[{prompt_row};1H› ready"));
    let mut turn_end: Option<(Instant, String)> = None;
    let turn_ms = env("FAKE_CODEX_TURN_MS").and_then(|d| d.parse().ok()).unwrap_or(100);
    let mut answers = 0;
    // codex sends the prompt given to `resume` as the session's next turn (the fake can drop it,
    // as codex 0.169.0 sometimes does under load)
    let turn = |rollout: &mut Rollout, text: &str| {
        rollout.line(serde_json::json!({"type":"event_msg","payload":{"type":"task_started"}}));
        rollout.line(serde_json::json!({"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":text}]}}));
        out(&format!("\x1b[{};1H› {}\x1b[K\x1b[{prompt_row};3H", prompt_row + 2, text.lines().next().unwrap_or("")));
        if let Some((err, info)) = failure {
            rollout.failed_turn(err, info);
            out(&format!("\x1b[{};1H\x1b[31m■\x1b[0m {err}\x1b[K", prompt_row + 4));
        } else {
            rollout.line(serde_json::json!({"type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":format!("fake answer to: {text}")}]}}));
        }
    };
    if let Some(p) = resume.as_ref().and(rest.get(1)) {
        if !selected("FAKE_CODEX_DROP_RESUME_PROMPT", n) {
            turn(&mut rollout, p);
        }
    } else if let (None, Some(p)) = (&resume, rest.first().filter(|_| sub.is_empty())) {
        // a new session's prompt (`codex PROMPT`) is its first turn
        turn(&mut rollout, p);
    }
    let mut buf = [0u8; 256];
    loop {
        if let Some((at, text)) = turn_end.take() {
            if Instant::now() >= at {
                answers += 1;
                let answer = format!("fake answer to: {text}");
                out(&format!("\x1b[{};1H• {answer}\x1b[K\x1b[{prompt_row};{}H", prompt_row + 3 + answers, 3 + typed.len()));
                rollout.line(serde_json::json!({"type":"event_msg","payload":{"type":"agent_message","message":answer}}));
                rollout.line(serde_json::json!({"type":"event_msg","payload":{"type":"task_complete","last_agent_message":answer}}));
            } else {
                turn_end = Some((at, text));
            }
        }
        if winch.swap(false, std::sync::atomic::Ordering::SeqCst) {
            out(&format!("\x1b[1;1H>_ Fake Codex (session {}) size {}\x1b[K", rollout.id, size()));
        }
        if let Some(at) = limit_at {
            if !limited && Instant::now() >= at {
                limited = true;
                if let Some(kb) = env("FAKE_CODEX_FLOOD_KB").and_then(|k| k.parse::<usize>().ok()) {
                    // a flood of output first: the detector must not skip any of it
                    let line = format!("{}\r\n", "x".repeat(94));
                    let block: String = (0..kb * 1024 / 100).map(|i| format!("{i:04}{line}")).collect();
                    out(&block);
                    out("flood end\r\n\x1b[2J");
                }
                let text = limit_text(&shown);
                if env("FAKE_CODEX_ROLLOUT").as_deref() != Some("0") {
                    rollout.limit(&text, resets_at);
                }
                if env("FAKE_CODEX_SCREEN").as_deref() != Some("0") {
                    // drawn with a cursor move and styles, wrapped by the terminal like codex's
                    // banner, above the bottom rows
                    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
                    unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
                    let row = (ws.ws_row as usize).saturating_sub(6).max(prompt_row + 2);
                    let (a, b) = text.split_at(text.find("Upgrade").unwrap_or(0));
                    // one synchronized frame, then the cursor back in the composer, as codex does
                    out(&format!(
                        "\x1b[?2026h\x1b[{row};1H\x1b[31m■\x1b[0m \x1b[1m{a}\x1b[0m{b}\x1b[{prompt_row};{}H\x1b[?2026l",
                        3 + typed.len()
                    ));
                }
            }
        }
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&stdin), nix::poll::PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, 50u16);
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        let got = match stdin.lock().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..got] {
            match b {
                0x03 if ignore_cc => {}
                0x03 => {
                    ctrl_c += 1;
                    if ctrl_c >= 2 {
                        shut_down(&rollout.id, saved.as_ref(), code, prompt_row);
                    }
                    out(&format!("\x1b[{};1H\x1b[2mctrl + c again to quit\x1b[0m", prompt_row + 6));
                }
                b'q' => finish(&rollout.id, saved.as_ref(), code),
                b'l' if on_key && selected("FAKE_CODEX_LIMIT", n) => limit_at = Some(Instant::now()),
                b'd' => {
                    let sig = env("FAKE_CODEX_SIGNAL").and_then(|s| s.parse().ok()).unwrap_or(libc::SIGKILL);
                    unsafe { libc::signal(sig, libc::SIG_DFL) };
                    unsafe { libc::raise(sig) };
                }
                b'\r' => {
                    turn(&mut rollout, &typed);
                    if failure.is_none() {
                        // the backend's answer brings the usage reading, before the turn ends
                        rollout.turn_usage(n, resets_at);
                        turn_end = Some((Instant::now() + Duration::from_millis(turn_ms), typed.clone()));
                    }
                    typed.clear();
                    out(&format!("\x1b[{prompt_row};3H\x1b[K"));
                }
                c if (0x20..0x7f).contains(&c) => {
                    typed.push(c as char);
                    out(&format!("\x1b[{prompt_row};3H{typed}\x1b[K"));
                }
                _ => {}
            }
        }
    }
    finish(&rollout.id, saved.as_ref(), code);
}

/// The terminal in raw mode, as codex sets it; returns the settings to restore.
fn raw_mode() -> Option<nix::sys::termios::Termios> {
    let stdin = std::io::stdin();
    let saved = nix::sys::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    }
    saved
}

/// codex's sign-in screen, each word placed with a cursor move; Ctrl-C twice (or `q`) quits.
fn sign_in_screen(args: &[String]) -> ! {
    record(args, true, None, "");
    let stdin = std::io::stdin();
    let saved = raw_mode();
    out("\x1b[?1049h\x1b[2J");
    let mut col = 3;
    for w in "Sign in with ChatGPT to use Codex as part of your paid plan".split(' ') {
        out(&format!("\x1b[3;{col}H{w}"));
        col += w.len() + 1;
    }
    out("\x1b[6;1H> 1. Sign in with ChatGPT");
    let mut ctrl_c = 0;
    let mut buf = [0u8; 64];
    loop {
        let n = match stdin.lock().read(&mut buf) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        ctrl_c += buf[..n].iter().filter(|&&b| b == 0x03).count();
        if n == 0 || ctrl_c >= 2 || buf[..n].contains(&b'q') {
            out("\x1b[?1049l");
            if let Some(t) = &saved {
                let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
            }
            std::process::exit(0);
        }
    }
}

/// Quitting like codex 0.169.0: "Shutting down..." in the composer, `FAKE_CODEX_SHUTDOWN_MS` of
/// work, then the exit. A Ctrl-C meanwhile cuts the shutdown short (codex then exits at once,
/// its session not cleanly closed): the fake creates `$FAKE_CODEX_LOG.cut` and exits.
fn shut_down(id: &str, saved: Option<&nix::sys::termios::Termios>, code: i32, prompt_row: usize) -> ! {
    out(&format!("\x1b[?2026h\x1b[{prompt_row};1H\x1b[2m› Shutting down...\x1b[0m\x1b[K\x1b[?2026l"));
    let ms = env("FAKE_CODEX_SHUTDOWN_MS").and_then(|d| d.parse().ok()).unwrap_or(0);
    read_for(ms, |got| {
        let cut = got.contains(&0x03);
        if let (true, Some(log)) = (cut, env("FAKE_CODEX_LOG")) {
            let _ = std::fs::write(format!("{log}.cut"), id);
        }
        cut
    });
    finish(id, saved, code)
}

/// Reads stdin for `ms` milliseconds, giving each read to `each` (which ends it by returning true).
fn read_for(ms: u64, mut each: impl FnMut(&[u8]) -> bool) {
    let end = Instant::now() + Duration::from_millis(ms);
    let stdin = std::io::stdin();
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&stdin), nix::poll::PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, 20u16);
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if each(&buf[..n]) {
                return;
            }
        }
    }
}

fn finish(id: &str, saved: Option<&nix::sys::termios::Termios>, code: i32) -> ! {
    out("\x1b[?2004l\x1b[?25h\x1b[?1049l");
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, t);
    }
    out(&format!("To continue this session, run: codex resume {id}\r\n"));
    std::process::exit(code)
}

fn exec(args: &[String], sub: &[&str], rest: &[String], json: bool) {
    let resume = (sub.get(1) == Some(&"resume")).then(|| rest.first().cloned()).flatten();
    let prompt = if resume.is_some() { rest.get(1).cloned() } else { rest.first().cloned() };
    let mut stdin_text = String::new();
    if prompt.is_none() || prompt.as_deref() == Some("-") {
        let _ = std::io::stdin().read_to_string(&mut stdin_text);
    }
    account_check(args, resume.as_deref());
    let failure = turn_failure(foreign(resume.as_deref()));
    let mut rollout = Rollout::open(resume.as_deref(), "codex_exec");
    let n = record(args, true, Some(&rollout.id), &stdin_text);
    let (resets_at, shown) = reset_time(n);
    rollout.usage(42.5, resets_at);
    if let Some(ms) = env("FAKE_CODEX_EXEC_SLEEP_MS").and_then(|d| d.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if json {
        println!("{}", serde_json::json!({"type":"thread.started","thread_id":rollout.id}));
    } else {
        eprintln!("session id: {}", rollout.id);
    }
    let asked = prompt.clone().unwrap_or_else(|| stdin_text.clone());
    rollout.line(serde_json::json!({"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":asked}]}}));
    if let Some((err, info)) = failure {
        rollout.failed_turn(err, info);
        eprintln!("ERROR: {err}");
        eprintln!("ERROR: {err}");
        std::process::exit(1);
    }
    if selected("FAKE_CODEX_LIMIT", n) {
        let text = limit_text(&shown);
        if env("FAKE_CODEX_ROLLOUT").as_deref() != Some("0") {
            rollout.limit(&text, resets_at);
        }
        if env("FAKE_CODEX_SCREEN").as_deref() != Some("0") {
            if json {
                println!("{}", serde_json::json!({"type":"error","message":text}));
                println!("{}", serde_json::json!({"type":"turn.failed","error":{"message":text}}));
            } else {
                eprintln!("ERROR: {text}");
            }
        }
        std::process::exit(1);
    }
    let answer = format!("fake answer to: {asked}");
    rollout.line(serde_json::json!({"type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":answer}]}}));
    if json {
        println!("{}", serde_json::json!({"type":"item.completed","item":{"type":"agent_message","text":answer}}));
    } else {
        println!("{answer}");
    }
    std::process::exit(env("FAKE_CODEX_EXIT").and_then(|c| c.parse().ok()).unwrap_or(0));
}
