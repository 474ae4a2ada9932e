//! Fault injection: kill -9 at random moments of switch cycles, eight sessions switching at
//! once, the terminal after each abnormal end hs-run can catch, failed state writes.
//!
//! `HS_FAULT_ITERATIONS` (default 200) sets how many kills the kill test lands on a live process;
//! `HS_FAULT_SEED` replays one run (the seed is printed when a check fails).

use crate::support::auth::Tokens;
use crate::support::env::{regular_files, Run, TestEnv};
use crate::support::tui::Tui;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long anything may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(30);

/// A sealed env with accounts `acc1..accN` logged in (fake ChatGPT logins in their vaults) and
/// hs-run pointed at the fake codex.
struct Accounts {
    t: TestEnv,
    tokens: Vec<(String, Tokens)>,
}

impl Accounts {
    fn new(n: usize) -> Accounts {
        let mut t = TestEnv::new();
        let tokens = (1..=n).map(|i| format!("acc{i}")).map(|name| (name.clone(), t.add_logged_in(&name))).collect();
        t.use_fake_codex();
        Accounts { t, tokens }
    }

    fn runtime_entries(&self) -> Vec<PathBuf> {
        let root = self.t.state_dir().join("runtime");
        std::fs::read_dir(root).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    }

    /// Waits until no process of this env (its HOME) is left, e.g. the orphans of a killed hs-run.
    fn wait_for_no_processes(&self, what: &str, except: &[u32]) {
        let start = Instant::now();
        loop {
            let left = shared::procs::pids_with_env("HOME", self.t.home.as_os_str().as_encoded_bytes(), except)
                .into_iter()
                .filter(|p| shared::procs::stat(*p).is_some_and(|s| s.state != 'Z'))
                .collect::<Vec<_>>();
            if left.is_empty() {
                return;
            }
            assert!(start.elapsed() < HANG, "{what}: processes left running: {left:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every vault's auth.json parses and holds its tokens, and no other regular file under the
    /// temp tree holds any of them (links to a vault file are fine).
    #[track_caller]
    fn assert_tokens_only_in_vaults(&self, what: &str) {
        let problems = self.token_problems();
        assert!(problems.is_empty(), "{what}: {problems:?}");
    }

    fn token_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, tok) in &self.tokens {
            let auth = self.t.vault_auth(name);
            match serde_json::from_slice::<Value>(&std::fs::read(&auth).unwrap_or_default()) {
                Err(e) => problems.push(format!("{} does not parse: {e}", auth.display())),
                Ok(v) if v["tokens"]["refresh_token"] != tok.refresh_token.as_str() => {
                    problems.push(format!("{name}'s vault lost its login"))
                }
                Ok(_) => {}
            }
        }
        for file in regular_files(self.t.root()) {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for (name, tok) in &self.tokens {
                let secrets = [&tok.refresh_token, &tok.access_token, &tok.id_token];
                if file != self.t.vault_auth(name) && secrets.iter().any(|s| contains(&bytes, s.as_bytes())) {
                    problems.push(format!("a copy of {name}'s tokens in {}", file.display()));
                }
            }
        }
        problems
    }

    /// The state files parse, `hs-overlay gc` leaves an empty runtime root, and a plain hs-run
    /// works afterwards.
    #[track_caller]
    fn assert_recovers(&self, what: &str) {
        for (tool, args) in [("hs-rotate", ["status", "--json"]), ("hs-vault", ["list", "--json"])] {
            let r = Run::from(self.t.cmd(tool).args(args).output().unwrap());
            assert_eq!(r.code, 0, "{what}: {tool} {args:?}: {}", r.stderr);
            r.json_lines();
        }
        let r = Run::from(self.t.cmd("hs-overlay").arg("gc").output().unwrap());
        assert_eq!(r.code, 0, "{what}: hs-overlay gc: {}", r.stderr);
        assert_eq!(self.runtime_entries(), Vec::<PathBuf>::new(), "{what}: left after hs-overlay gc");
        self.t.run("hs-rotate", &["reset"]).ok();
        let r = Run::from(self.t.cmd("hs-run").args(["--", "exec", "after"]).output().unwrap());
        assert_eq!((r.code, r.stdout.as_str()), (0, "fake answer to: after\n"), "{what}: next hs-run: {}", r.stderr);
        assert_eq!(self.runtime_entries(), Vec::<PathBuf>::new(), "{what}: the next hs-run left its overlay");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// xorshift64*: enough randomness for kill moments, replayable from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn env_number(key: &str) -> Option<u64> {
    std::env::var(key).ok()?.parse().ok()
}

/// Waits for `child` (the test's hang guard, not a timing check).
fn wait_child(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("{what}: hs-run hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A switch cycle: every run hits the limit, so the session moves acc1 → acc2 → acc3 and hs-run
/// then exits 75 (every account exhausted).
fn spawn_cycle(a: &Accounts) -> Child {
    a.t.cmd("hs-run")
        .args(["--on-exhausted", "exit", "--", "exec", "task"])
        .env("FAKE_CODEX_LIMIT", "all")
        .env("FAKE_CODEX_EXEC_SLEEP_MS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The running fake codex under hs-run, if one runs now.
fn codex_under(hs_run: u32) -> Option<u32> {
    shared::procs::process_tree(hs_run)
        .into_iter()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "fake-codex"))
}

#[derive(Default, Debug)]
struct Tally {
    hs_run_killed: u64,
    codex_killed: u64,
    missed: u64,
}

/// Switch cycles in one env, each killed (hs-run or its codex, alternately) with SIGKILL at a
/// random moment, then checked, until `landed` (shared by every thread) reaches `total`.
fn kill_cycles(landed: &AtomicU64, total: u64, seed: u64) -> Tally {
    let a = Accounts::new(3);
    // the token check sees a copy (so its silence below means something)
    let copy = a.t.root().join("copy.json");
    std::fs::copy(a.t.vault_auth("acc2"), &copy).unwrap();
    assert_eq!(a.token_problems().len(), 1, "the token check sees a planted copy");
    std::fs::remove_file(&copy).unwrap();
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    // An undisturbed cycle first: it must end as designed, and its length bounds the kill moments.
    let start = Instant::now();
    let mut child = spawn_cycle(&a);
    let st = wait_child(&mut child, "undisturbed cycle");
    assert_eq!(st.code(), Some(75), "undisturbed cycle");
    let span = start.elapsed().as_micros() as u64;
    a.assert_recovers("undisturbed cycle");
    // at most 2×total cycles per thread, in case kills keep missing
    for i in 0..2 * total {
        if landed.load(Ordering::SeqCst) >= total {
            break;
        }
        let what = format!("cycle {i} (seed {seed})");
        let codex_victim = i % 2 == 1;
        let mut child = spawn_cycle(&a);
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        let hit = if codex_victim {
            // the codex of this moment, or of the next run when hs-run is between two runs
            let mut hit = false;
            while child.try_wait().unwrap().is_none() {
                if let Some(p) = codex_under(child.id()) {
                    hit = kill(Pid::from_raw(p as i32), Signal::SIGKILL).is_ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            hit
        } else {
            // not yet reaped, so the pid is still this hs-run's even when it has just exited
            kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).is_ok()
        };
        let st = wait_child(&mut child, &what);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        use std::os::unix::process::ExitStatusExt;
        // a kill that came after the process had ended by itself is a miss
        let killed = hit && (codex_victim || st.signal() == Some(9));
        match (killed, codex_victim) {
            (false, _) => {
                tally.missed += 1;
                assert_eq!(st.code(), Some(75), "{what}: {stderr}");
            }
            (true, false) => {
                landed.fetch_add(1, Ordering::SeqCst);
                tally.hs_run_killed += 1;
                assert_eq!(st.signal(), Some(9), "{what}: {stderr}");
            }
            (true, true) => {
                landed.fetch_add(1, Ordering::SeqCst);
                tally.codex_killed += 1;
                // a codex killed before its limit was seen ends the run with 128+9; after, the
                // switch goes on; either way hs-run cleans up by itself
                assert!(matches!(st.code(), Some(137 | 75)), "{what}: {st:?}: {stderr}");
                assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            }
        }
        a.wait_for_no_processes(&what, &[]);
        if codex_victim {
            assert_eq!(a.runtime_entries(), Vec::<PathBuf>::new(), "{what}: hs-run left its overlay");
        }
        a.assert_tokens_only_in_vaults(&what);
        a.assert_recovers(&what);
    }
    tally
}

#[test]
fn kill_9_during_switch_cycles_leaves_everything_usable() {
    let total = env_number("HS_FAULT_ITERATIONS").unwrap_or(200);
    let threads = 2u64;
    let seed = env_number("HS_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let landed = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let landed = landed.clone();
            std::thread::spawn(move || kill_cycles(&landed, total, seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))))
        })
        .collect();
    let mut sum = Tally::default();
    for h in handles {
        let t = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        sum.hs_run_killed += t.hs_run_killed;
        sum.codex_killed += t.codex_killed;
        sum.missed += t.missed;
    }
    eprintln!("kill -9 cycles (seed {seed}): {sum:?}");
    assert!(sum.hs_run_killed + sum.codex_killed >= total, "{sum:?}");
    assert!(sum.hs_run_killed > 0 && sum.codex_killed > 0, "{sum:?}");
}

#[test]
fn eight_sessions_switching_at_once_lose_no_state_update() {
    const SESSIONS: usize = 8;
    const LIMITS: usize = 3;
    let a = Accounts::new(SESSIONS * LIMITS + 2);
    let logs: Vec<PathBuf> = (0..SESSIONS).map(|i| a.t.root().join(format!("session-{i}.jsonl"))).collect();
    // each fake codex logs apart, so session i hits the limit in its own runs 1..=LIMITS
    let mut children: Vec<Child> = logs
        .iter()
        .map(|log| {
            a.t.cmd("hs-run")
                .args(["--on-exhausted", "exit", "--", "exec", "task"])
                .env("FAKE_CODEX_LOG", log)
                .env("FAKE_CODEX_LIMIT", "1,2,3")
                .env("FAKE_CODEX_EXEC_SLEEP_MS", "50")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.iter_mut().enumerate() {
        let st = wait_child(c, &format!("session {i}"));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(st.code(), Some(0), "session {i}: {err}");
    }
    let read_lines = |p: &Path| -> Vec<Value> {
        std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let swaps = read_lines(&a.t.state_dir().join("events.jsonl"));
    assert_eq!(swaps.len(), SESSIONS * LIMITS, "one events.jsonl line per switch");
    let mut limited = std::collections::BTreeSet::new();
    for (i, log) in logs.iter().enumerate() {
        let runs: Vec<Value> = read_lines(log).into_iter().filter(|r| r["model"] == true).collect();
        assert_eq!(runs.len(), LIMITS + 1, "session {i}");
        let id = runs[0]["session_id"].as_str().unwrap();
        assert!(runs.iter().all(|r| r["session_id"] == id), "session {i}: one session throughout");
        // the accounts hs-run announced for this session, in order
        let mine: Vec<&Value> = swaps.iter().filter(|s| s["session_id"] == id).collect();
        assert_eq!(mine.len(), LIMITS, "session {i}");
        let mut told = vec![mine[0]["from"].as_str().unwrap()];
        for (k, s) in mine.iter().enumerate() {
            assert_eq!(s["from"].as_str(), Some(told[k]), "session {i}: switches chain");
            told.push(s["to"].as_str().unwrap());
        }
        for (run, account) in runs.iter().zip(&told) {
            // the fake read auth.json through the overlay's link: the vault of that account
            assert_eq!(run["account_id"].as_str(), Some(format!("acct-{account}").as_str()), "session {i}: {run}");
        }
        limited.extend(told[..LIMITS].iter().map(|s| s.to_string()));
    }
    let status = a.t.run("hs-rotate", &["status", "--json"]).ok().json_lines();
    let exhausted: std::collections::BTreeSet<String> =
        status.iter().filter(|s| s["state"] == "exhausted").map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(exhausted, limited, "every exhaustion recorded, and only those");
    assert_eq!(a.runtime_entries(), Vec::<PathBuf>::new());
    a.assert_tokens_only_in_vaults("after eight sessions");
}

// ---- the terminal after abnormal ends ----

/// `sh` under a PTY runs hs-run between two `stty -g`; `done` then says its exit code and
/// whether the terminal settings came back.
fn tui(a: &Accounts, envs: &[(&str, &str)]) -> Tui {
    let d = a.t.root().display();
    let script = format!(
        "stty -g > '{d}/stty-before'; hs-run; echo $? > '{d}/code'; stty -g > '{d}/stty-after'; echo HS-RUN-DONE; read x"
    );
    let mut cmd = a.t.cmd("/bin/sh");
    cmd.args(["-c", &script]).envs(envs.iter().copied());
    Tui::spawn(cmd, 24, 100)
}

/// hs-run's exit code, and whether `stty -g` after it equals `stty -g` before.
fn done(a: &Accounts, tui: &Tui) -> (i32, bool) {
    tui.wait_for_text("HS-RUN-DONE", HANG).unwrap();
    let read = |n: &str| std::fs::read_to_string(a.t.root().join(n)).unwrap();
    (read("code").trim().parse().unwrap(), read("stty-before") == read("stty-after"))
}

fn hs_run_under(tui: &Tui) -> Pid {
    let start = Instant::now();
    loop {
        let found = shared::procs::process_tree(tui.pid())
            .into_iter()
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "hs-run"));
        if let Some(p) = found {
            return Pid::from_raw(p as i32);
        }
        assert!(start.elapsed() < HANG, "hs-run not found under the test terminal");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_panic_in_hs_run_restores_the_terminal() {
    let a = Accounts::new(1);
    let tui = tui(&a, &[("HS_RUN_TEST_PANIC_ON_USR2", "1")]);
    tui.wait_for_text("› ready", HANG).unwrap();
    kill(hs_run_under(&tui), Signal::SIGUSR2).unwrap();
    assert_eq!(done(&a, &tui), (101, true), "{}", tui.screen());
    assert!(tui.screen_has("injected test panic"), "{}", tui.screen());
    // the panic skipped hs-run's cleanup: gc takes the overlay once codex got its hangup
    a.wait_for_no_processes("after the panic", &[tui.pid()]);
    a.assert_recovers("after the panic");
}

#[test]
fn codex_crashing_restores_the_terminal() {
    for (sig, code) in [(libc::SIGSEGV, 139), (libc::SIGABRT, 134), (libc::SIGBUS, 135)] {
        let a = Accounts::new(1);
        let tui = tui(&a, &[("FAKE_CODEX_SIGNAL", &sig.to_string())]);
        tui.wait_for_text("› ready", HANG).unwrap();
        tui.send(b"d");
        assert_eq!(done(&a, &tui), (code, true), "signal {sig}: {}", tui.screen());
        assert_eq!(a.runtime_entries(), Vec::<PathBuf>::new(), "signal {sig}");
    }
}

/// The control for the checks above: a kill hs-run cannot catch leaves the terminal raw, and
/// the `stty -g` comparison sees it.
#[test]
fn kill_9_of_hs_run_is_seen_by_the_terminal_check() {
    let a = Accounts::new(1);
    let tui = tui(&a, &[]);
    tui.wait_for_text("› ready", HANG).unwrap();
    kill(hs_run_under(&tui), Signal::SIGKILL).unwrap();
    assert_eq!(done(&a, &tui), (137, false), "{}", tui.screen());
    a.wait_for_no_processes("after kill -9", &[tui.pid()]);
    a.assert_recovers("after kill -9");
}

/// While codex runs, hs-run must hold no descriptor of codex's side of the pseudo-terminal:
/// otherwise the master never reports the end (EIO) when codex exits, and hs-run waits out its
/// one-second grace at every TUI exit and switch (BENCHMARKS.md). `Pty::spawn` used to leave
/// three copies in the `Command` until the run ended.
#[test]
fn hs_run_keeps_no_copy_of_codexs_terminal() {
    let a = Accounts::new(1);
    let tui = tui(&a, &[]);
    tui.wait_for_text("› ready", HANG).unwrap();
    let hs_run = hs_run_under(&tui).as_raw() as u32;
    let codex = codex_under(hs_run).expect("codex runs");
    let codex_tty = std::fs::read_link(format!("/proc/{codex}/fd/0")).unwrap();
    let held: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{hs_run}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| *t == codex_tty)
        .collect();
    tui.send(b"q");
    assert_eq!(done(&a, &tui), (0, true));
    assert!(held.is_empty(), "hs-run holds codex's terminal {}: {held:?}", codex_tty.display());
}

// ---- failed state writes ----


/// Names of the files in `dir` that look like a temp file left behind.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.starts_with(".tmp"))
        .collect()
}

#[test]
fn failed_registry_and_config_writes_keep_the_old_files() {
    let a = Accounts::new(2);
    let registry = a.t.config_dir().join("accounts.json");
    let before = std::fs::read(&registry).unwrap();
    let mut cmd = a.t.cmd("hs-vault");
    cmd.args(["add", "acc3", "--note", &"a long note ".repeat(20)]);
    let r = crate::support::env::run_with_small_file_limit(cmd).code(2);
    assert!(r.stderr.starts_with("hs-vault: ") && r.stderr.contains("File too large"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(std::fs::read(&registry).unwrap(), before, "old registry intact");
    let names: Vec<String> =
        a.t.run("hs-vault", &["list", "--json"]).ok().json_lines().iter().map(|v| v["name"].as_str().unwrap().into()).collect();
    assert_eq!(names, ["acc1", "acc2"]);
    assert_eq!(temp_files(&a.t.config_dir()), Vec::<String>::new());

    a.t.run("hs-config", &["set", "default_cooldown", "2h"]).ok();
    let config = a.t.config_dir().join("config.json");
    let before = std::fs::read(&config).unwrap();
    let mut cmd = a.t.cmd("hs-config");
    cmd.args(["set", "continue_prompt", &"keep going ".repeat(20)]);
    let r = crate::support::env::run_with_small_file_limit(cmd).code(2);
    assert!(r.stderr.starts_with("hs-config: ") && r.stderr.contains("File too large"), "{}", r.stderr);
    assert_eq!(std::fs::read(&config).unwrap(), before, "old config intact");
    assert_eq!(a.t.run("hs-config", &["get", "default_cooldown"]).ok().stdout.trim(), "2h");
    a.t.run("hs-config", &["get", "continue_prompt"]).code(1);
    assert_eq!(temp_files(&a.t.config_dir()), Vec::<String>::new());
}

/// A folder that cannot be written (for root too: the tools run without the capabilities that let
/// root write anywhere): each state write fails with one line naming the file, and the old
/// files stay as they were, with no temp file left.
#[test]
fn writes_into_read_only_folders_keep_the_old_files() {
    use crate::support::env::run_bound_by_permissions;
    use std::os::unix::fs::PermissionsExt;
    let a = Accounts::new(2);
    a.t.run("hs-rotate", &["exhaust", "acc1", "--for", "1h"]).ok();
    a.t.run("hs-config", &["set", "default_cooldown", "2h"]).ok();
    let files = [a.t.state_dir().join("rotation.json"), a.t.config_dir().join("accounts.json"), a.t.config_dir().join("config.json")];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let chmod = |mode| {
        for d in [a.t.state_dir(), a.t.config_dir()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    chmod(0o500);
    for (tool, args, file) in [
        ("hs-rotate", &["exhaust", "acc2", "--for", "1h"][..], "rotation.json"),
        ("hs-vault", &["add", "acc3"][..], "accounts.json"),
        ("hs-config", &["set", "policy", "soonest-reset"][..], "config.json"),
    ] {
        let mut cmd = a.t.cmd(tool);
        cmd.args(args);
        let r = run_bound_by_permissions(cmd).code(2);
        assert!(r.stderr.starts_with(&format!("{tool}: ")), "{}", r.stderr);
        assert!(r.stderr.contains(file) && r.stderr.contains("Permission denied"), "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    chmod(0o700);
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(before == after, "old files intact");
    assert_eq!(temp_files(&a.t.state_dir()), Vec::<String>::new());
    assert_eq!(temp_files(&a.t.config_dir()), Vec::<String>::new());
    let st = a.t.run("hs-rotate", &["status", "--json"]).ok().json_lines();
    assert!(st.iter().any(|v| v["name"] == "acc2" && v["state"] == "available"), "{st:?}");
}
