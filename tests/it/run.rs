//! hs-run with the fake codex (tests/fakes/fake_codex.rs) and the real sibling tools.

use crate::support::env::{bin, regular_files, TestEnv};
use crate::support::tui::Tui;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_PROMPT: &str = "The previous account hit its usage limit. Continue where you left off.";
const T: Duration = Duration::from_secs(20);

/// A sealed env with accounts `acc1..accN` (auth.json with account id `acct-<name>`), the shared
/// store, and hs-run pointed at the fake codex, which logs every start to `log`.
struct Env {
    t: TestEnv,
    log: PathBuf,
}

impl Env {
    fn new(accounts: usize) -> Env {
        let mut t = TestEnv::new();
        for i in 1..=accounts {
            t.add_logged_in(&format!("acc{i}"));
        }
        let log = t.use_fake_codex();
        Env { t, log }
    }

    /// Model sessions the fake codex saw, in order.
    fn runs(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["model"] == true)
            .collect()
    }

    fn all_starts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn swaps(&self) -> Vec<Value> {
        swaps(&self.t)
    }

    fn status(&self) -> Vec<Value> {
        self.t.run("hs-rotate", &["status", "--json"]).ok().json_lines()
    }

    fn state_of(&self, name: &str) -> Value {
        self.status().into_iter().find(|s| s["name"] == name).unwrap()
    }

    #[track_caller]
    fn assert_no_overlay(&self) {
        assert_no_overlay(&self.t)
    }

    /// `sh` under a PTY: saves `stty -g`, runs hs-run with `args`, saves its exit code and
    /// `stty -g` again, then waits for a key so the screen can still be read.
    fn tui(&self, hs_args: &[&str], envs: &[(&str, &str)]) -> Tui {
        let d = self.t.root();
        let quoted: Vec<String> = hs_args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
        let script = format!(
            "stty -g > '{0}/stty-before'; hs-run {1}; echo $? > '{0}/code'; stty -g > '{0}/stty-after'; echo HS-RUN-DONE; read x",
            d.display(),
            quoted.join(" ")
        );
        let mut cmd = self.t.cmd("/bin/sh");
        cmd.args(["-c", &script]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Tui::spawn(cmd, 24, 100)
    }

    /// Waits for the second codex (after one switch) to be ready, quits it, and checks that
    /// hs-run ended with its code 0.
    #[track_caller]
    fn quit_after_switch(&self, tui: &Tui) {
        tui.wait_until(|_| self.runs().len() == 2, T).unwrap();
        tui.wait_for_text("› ready", T).unwrap();
        tui.send(b"q");
        assert_eq!(self.finished(tui), 0);
    }

    /// After `HS-RUN-DONE`: hs-run's exit code, and the terminal settings were restored.
    #[track_caller]
    fn finished(&self, tui: &Tui) -> i32 {
        tui.wait_for_text("HS-RUN-DONE", T).unwrap();
        let read = |n: &str| std::fs::read_to_string(self.t.root().join(n)).unwrap();
        assert_eq!(read("stty-before"), read("stty-after"), "terminal settings not restored");
        read("code").trim().parse().unwrap()
    }
}

/// No overlay left under the runtime root.
#[track_caller]
fn assert_no_overlay(t: &TestEnv) {
    let root = t.state_dir().join("runtime");
    let left: Vec<_> = std::fs::read_dir(&root).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "overlays left behind: {left:?}");
}

/// The switches hs-run logged to events.jsonl.
fn swaps(t: &TestEnv) -> Vec<Value> {
    std::fs::read_to_string(t.state_dir().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// hs-run's pid under the `sh` of [`Env::tui`].
fn hs_run_pid(tui: &Tui) -> u32 {
    for _ in 0..200 {
        let found = shared::procs::process_tree(tui.pid()).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "hs-run")
        });
        if let Some(p) = found {
            return p;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("hs-run not found under the test terminal");
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

/// The arguments a fake codex run got, less the file-store override hs-run gives every model
/// session in front of the user's arguments (checked here; `--no-daemon` may come before it).
#[track_caller]
pub(crate) fn codex_args(run: &Value) -> Vec<String> {
    let mut all = strs(&run["args"]);
    let at = all.windows(2).position(|w| w == shared::codex::FILE_STORE);
    let at = at.filter(|&i| i <= 1).unwrap_or_else(|| panic!("no file credential store override in front: {all:?}"));
    all.drain(at..at + 2);
    all
}

#[test]
fn tui_limit_moves_the_same_session_to_the_next_account() {
    let e = Env::new(3);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1")]);
    // the resumed codex shows its session; the notice was printed between the two runs
    tui.wait_for_text("codex-hotswap: acc1 hit its usage limit (back at", T).unwrap();
    tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
    tui.wait_for_text("› ready", T).unwrap();
    let runs = e.runs();
    let id = runs[0]["session_id"].as_str().unwrap().to_string();
    assert_eq!(codex_args(&runs[0]), ["--no-daemon"]);
    assert_eq!(codex_args(&runs[1]), ["resume", "--no-daemon", &id, DEFAULT_PROMPT]);
    assert_eq!(runs[0]["account_id"], "acct-acc1");
    assert_eq!(runs[1]["account_id"], "acct-acc2");
    assert_eq!(runs[1]["session_id"], runs[0]["session_id"]);
    assert_eq!(runs[0]["codex_home"], runs[1]["codex_home"], "one overlay, swapped");
    assert!(tui.screen_has(&format!("session {id}")), "{}", tui.screen());
    // quit the resumed codex: hs-run ends with its code, cleans up
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
    assert_eq!(e.runs().len(), 2, "one limit, one switch");
    e.assert_no_overlay();
    let swaps = e.swaps();
    assert_eq!(swaps.len(), 1);
    assert_eq!(swaps[0]["type"], "swap");
    assert_eq!((swaps[0]["from"].as_str(), swaps[0]["to"].as_str()), (Some("acc1"), Some("acc2")));
    assert_eq!(swaps[0]["session_id"].as_str(), Some(id.as_str()));
    assert_eq!(e.state_of("acc1")["state"], "exhausted");
    assert_eq!(e.state_of("acc2")["state"], "available");
    assert!(!std::fs::read(&e.log).unwrap().windows(4).any(|w| w == b"tok-"));
}

#[test]
fn redrawn_banner_after_resume_does_not_switch_again() {
    let e = Env::new(3);
    // the resumed TUI redraws the old conversation, old banner included
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1")]);
    tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
    tui.wait_for_text("› ready", T).unwrap();
    assert!(tui.screen_has("You’ve hit your usage limit"), "the resumed TUI redraws the old banner:\n{}", tui.screen());
    tui.type_text("hello");
    tui.wait_for_text("hello", T).unwrap();
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
    assert_eq!(e.runs().len(), 2);
    assert_eq!(e.swaps().len(), 1);
    assert_eq!(e.state_of("acc2")["state"], "available");
    assert_eq!(e.state_of("acc3")["state"], "available");
}

#[test]
fn resuming_a_session_that_hit_a_limit_before_does_not_switch() {
    let e = Env::new(2);
    let r = e.t.cmd("hs-run").args(["--", "exec", "x"]).env("FAKE_CODEX_LIMIT", "1").output().unwrap();
    assert_eq!(r.status.code(), Some(0));
    let id = e.runs()[0]["session_id"].as_str().unwrap().to_string();
    e.t.run("hs-rotate", &["reset"]).ok();
    let tui = e.tui(&["--", "resume", &id], &[]);
    tui.wait_until(|_| e.runs().len() == 3, T).unwrap();
    tui.wait_for_text("› ready", T).unwrap();
    assert!(tui.screen_has("You’ve hit your usage limit"), "the old banner is redrawn:\n{}", tui.screen());
    tui.type_text("hello");
    tui.wait_for_text("hello", T).unwrap();
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
    assert_eq!(e.runs().len(), 3);
    assert_eq!(e.swaps().len(), 1, "only the exec's switch");
    assert_eq!(e.state_of("acc1")["state"], "available");
}

#[test]
fn screen_banner_alone_switches() {
    // no rollout record: the screen (hs-detect) is the only source
    let e = Env::new(2);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_ROLLOUT", "0")]);
    e.quit_after_switch(&tui);
    let runs = e.runs();
    assert_eq!(runs[1]["account_id"], "acct-acc2");
    assert_eq!(codex_args(&runs[1])[..3], ["resume", "--no-daemon", runs[0]["session_id"].as_str().unwrap()]);
}

#[test]
fn screen_banner_after_a_resize_switches() {
    let e = Env::new(2);
    let envs = [("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_ROLLOUT", "0"), ("FAKE_CODEX_LIMIT_DELAY_MS", "key")];
    let tui = e.tui(&[], &envs);
    tui.wait_for_text("› ready", T).unwrap();
    tui.resize(40, 60);
    tui.wait_for_text("size 40x60", T).unwrap();
    tui.send(b"l");
    e.quit_after_switch(&tui);
    assert_eq!(e.runs()[1]["account_id"], "acct-acc2");
}

/// The flood lines the fake codex printed that reached the terminal (`FAKE_CODEX_FLOOD_KB`).
fn flood_lines(tui: &Tui) -> usize {
    String::from_utf8_lossy(&tui.raw()).matches(&format!("{}\r\n", "x".repeat(94))).count()
}

#[test]
fn a_flood_of_output_reaches_the_terminal_whole_and_the_banner_after_it_switches() {
    // 6 MiB at once, then the banner on the screen only (no rollout record): nothing of the
    // flood may be lost on the way to the user or to the screen model
    let e = Env::new(2);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_ROLLOUT", "0"), ("FAKE_CODEX_FLOOD_KB", "6144")]);
    e.quit_after_switch(&tui);
    assert_eq!(e.runs()[1]["account_id"], "acct-acc2");
    assert_eq!(flood_lines(&tui), 6144 * 1024 / 100);
}

#[test]
fn a_detector_that_stops_reading_holds_output_back_5_s_then_is_given_up() {
    // hs-detect replaced by a program that never reads: hs-run keeps 4 MiB for it, then holds
    // codex's output back, then gives it up; the rollout still switches and nothing is lost
    let mut e = Env::new(2);
    let tools = e.t.root().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for t in ["hs-run", "hs-rotate", "hs-overlay", "hs-vault", "hs-config"] {
        std::fs::copy(bin(t), tools.join(t)).unwrap();
    }
    let stuck = tools.join("hs-detect");
    let pids = e.t.root().join("stuck-pids");
    std::fs::write(&stuck, format!("#!/bin/sh\necho $$ >> '{}'\nexec sleep 600\n", pids.display())).unwrap();
    std::fs::set_permissions(&stuck, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    e.t.path_first(&tools);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_FLOOD_KB", "6144")]);
    e.quit_after_switch(&tui);
    assert_eq!(e.runs()[1]["account_id"], "acct-acc2");
    assert_eq!(flood_lines(&tui), 6144 * 1024 / 100);
    let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
    assert!(raw.contains("hs-detect stopped reading codex's output for 5 s, only the rollout was watched"), "{}", tui.screen());
    // both runs' detectors (the second one had nothing to hold back) were ended
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.lines().count(), 2, "{pids}");
    for pid in pids.lines() {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "detector {pid} still runs");
    }
}

#[test]
fn a_quitting_codex_gets_no_more_ctrl_c() {
    // codex draws "Shutting down..." after its quitting Ctrl-C and takes its time: one more
    // Ctrl-C then would cut the shutdown short (codex 0.169.0 exits at once, and the resumed
    // session may never send its first prompt)
    let e = Env::new(2);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_SHUTDOWN_MS", "2500")]);
    e.quit_after_switch(&tui);
    assert_eq!(e.runs()[1]["account_id"], "acct-acc2");
    let cut = PathBuf::from(format!("{}.cut", e.log.display()));
    assert!(!cut.exists(), "a Ctrl-C cut the shutdown of codex short");
}

/// How many turns carried `text` as their user message, in every rollout of the shared store.
fn turns_with(t: &TestEnv, text: &str) -> usize {
    let says = |v: &Value| {
        let p = &v["payload"];
        p["role"] == "user" && p["content"].as_array().is_some_and(|c| c.iter().any(|c| c["text"] == text))
    };
    regular_files(&t.home.join(".codex/sessions"))
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>())
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| says(&v)))
        .count()
}

/// A limit on acc1 with `resend_prompt_after` 1s; the resumed fake codex drops its prompt when
/// `drop` says so.
fn resumed_with_resend(drop: bool) -> (Env, Tui) {
    let e = Env::new(2);
    e.t.run("hs-config", &["set", "resend_prompt_after", "1s"]).ok();
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_DROP_RESUME_PROMPT", if drop { "2" } else { "" })]);
    tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
    tui.wait_for_text("› ready", T).unwrap();
    (e, tui)
}

#[test]
fn a_resumed_codex_that_never_sends_its_prompt_gets_it_typed_once() {
    let (e, tui) = resumed_with_resend(true);
    tui.wait_until(|_| turns_with(&e.t, DEFAULT_PROMPT) == 1, T).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(turns_with(&e.t, DEFAULT_PROMPT), 1, "typed once");
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
}

#[test]
fn a_resumed_codex_that_sends_its_prompt_gets_no_second_one() {
    let (e, tui) = resumed_with_resend(false);
    tui.wait_until(|_| turns_with(&e.t, DEFAULT_PROMPT) == 1, T).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(turns_with(&e.t, DEFAULT_PROMPT), 1);
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
}

#[test]
fn typing_into_a_resumed_codex_cancels_the_resend() {
    let (e, tui) = resumed_with_resend(true);
    tui.type_text("hello there");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(turns_with(&e.t, DEFAULT_PROMPT), 0, "the user is typing: hs-run keeps out");
    assert!(tui.screen_has("hello there"), "{}", tui.screen());
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
}

#[test]
fn ctrl_c_ignored_escalates_to_sigterm_and_still_resumes() {
    let e = Env::new(2);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_IGNORE_CTRL_C", "1")]);
    e.quit_after_switch(&tui);
    assert_eq!(e.runs()[1]["account_id"], "acct-acc2");
}

#[test]
fn no_continue_resumes_without_a_prompt_and_continue_prompt_replaces_it() {
    let e = Env::new(2);
    let tui = e.tui(&["--no-continue", "--", "-m", "o3", "first prompt"], &[("FAKE_CODEX_LIMIT", "1")]);
    e.quit_after_switch(&tui);
    let runs = e.runs();
    assert_eq!(codex_args(&runs[0]), ["--no-daemon", "-m", "o3", "first prompt"]);
    assert_eq!(codex_args(&runs[1]), ["-m", "o3", "resume", "--no-daemon", runs[0]["session_id"].as_str().unwrap()]);

    let e = Env::new(2);
    let r = e
        .t
        .cmd("hs-run")
        .args(["--continue-prompt", "keep going", "--", "exec", "--json", "-s", "read-only", "task"])
        .env("FAKE_CODEX_LIMIT", "1")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let runs = e.runs();
    let id = runs[0]["session_id"].as_str().unwrap();
    assert_eq!(codex_args(&runs[1]), ["exec", "--json", "-s", "read-only", "resume", id, "keep going"]);
}

#[test]
fn exec_without_terminal_switches_and_keeps_stdout_and_stderr_apart() {
    let e = Env::new(3);
    let r = e.t.cmd("hs-run").args(["--", "exec", "--skip-git-repo-check", "do it"]).env("FAKE_CODEX_LIMIT", "1").output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.status.code(), Some(0), "{err}");
    // stdout: only the answer of the resumed run; stderr: codex's error and the notice
    assert_eq!(out, format!("fake answer to: {DEFAULT_PROMPT}\n"));
    assert!(err.contains("ERROR: You’ve hit your usage limit."), "{err}");
    assert!(err.contains("codex-hotswap: acc1 hit its usage limit (back at "), "{err}");
    assert!(err.contains("); continuing this session on acc2\n"), "{err}");
    let runs = e.runs();
    let id = runs[0]["session_id"].as_str().unwrap();
    assert_eq!(codex_args(&runs[1]), ["exec", "--skip-git-repo-check", "resume", id, DEFAULT_PROMPT]);
    assert_eq!(runs[1]["account_id"], "acct-acc2");
    e.assert_no_overlay();
    // telemetry from the rollout reached hs-rotate record for both accounts
    assert_eq!(e.state_of("acc1")["state"], "exhausted");
    assert_eq!(e.state_of("acc2")["primary_used_percent"], 42.5);
    assert_eq!(e.state_of("acc3")["primary_used_percent"], Value::Null);
}

#[test]
fn exec_reads_its_prompt_from_stdin_only_once() {
    let e = Env::new(2);
    e.t.run_stdin("hs-run", &["--", "exec", "-"], b"prompt from a pipe").ok();
    let runs = e.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["stdin"], "prompt from a pipe");
    let e = Env::new(2);
    let mut c = e.t.cmd("hs-run");
    c.args(["--", "exec"]).env("FAKE_CODEX_LIMIT", "1");
    let r = {
        use std::io::Write;
        let mut child = c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"from stdin").unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let runs = e.runs();
    assert_eq!(runs[0]["stdin"], "from stdin");
    assert_eq!(runs[1]["stdin"], "");
}

#[test]
fn two_sessions_at_once_are_independent() {
    let e = Env::new(3);
    let log_b = e.t.root().join("fake-codex-b.jsonl");
    // A hits its limit on acc1 and moves on; B works on acc3 meanwhile (each fake logs apart)
    let spawn = |args: &[&str], envs: &[(&str, &std::ffi::OsStr)]| {
        e.t.cmd("hs-run")
            .args(args)
            .envs(envs.iter().copied())
            .env("FAKE_CODEX_EXEC_SLEEP_MS", "300")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["--account", "acc1", "--", "exec", "first"], &[("FAKE_CODEX_LIMIT", "1".as_ref())]);
    let b = spawn(&["--account", "acc3", "--", "exec", "second"], &[("FAKE_CODEX_LOG", log_b.as_os_str())]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(b.status.code(), Some(0), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(String::from_utf8_lossy(&b.stdout), "fake answer to: second\n");
    let runs_a = e.runs();
    let runs_b: Vec<Value> = std::fs::read_to_string(&log_b).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs_a.len(), 2);
    assert_eq!(runs_b.len(), 1);
    assert_eq!(runs_a[0]["account_id"], "acct-acc1");
    assert_ne!(runs_a[1]["account_id"], "acct-acc1");
    assert_eq!(runs_a[1]["session_id"], runs_a[0]["session_id"]);
    assert_eq!(runs_b[0]["account_id"], "acct-acc3");
    assert_ne!(runs_a[0]["codex_home"], runs_b[0]["codex_home"], "one overlay per session");
    assert_eq!(runs_a[0]["codex_home"], runs_a[1]["codex_home"]);
    e.assert_no_overlay();
}

#[test]
fn max_swaps_bounds_a_run() {
    let e = Env::new(3);
    let r = e.t.cmd("hs-run").args(["--max-swaps", "1", "--", "exec", "x"]).env("FAKE_CODEX_LIMIT", "all").output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "codex's own code: {err}");
    assert!(err.contains("acc2 hit its usage limit (back at "), "{err}");
    assert!(err.contains("not switching again (--max-swaps 1 reached)"), "{err}");
    assert_eq!(e.runs().len(), 2);
    assert_eq!(e.swaps().len(), 1);
    // the second limit was still recorded
    assert_eq!(e.state_of("acc2")["state"], "exhausted");
    assert_eq!(e.state_of("acc3")["state"], "available");
    e.assert_no_overlay();
}

#[test]
fn all_exhausted_exit_lists_accounts_with_exit_75() {
    let e = Env::new(2);
    let r = e.t.cmd("hs-run").args(["--on-exhausted", "exit", "--", "exec", "x"]).env("FAKE_CODEX_LIMIT", "all").output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(75), "{err}");
    let runs = e.runs();
    assert_eq!(runs.len(), 2);
    let id = runs[0]["session_id"].as_str().unwrap();
    assert!(err.contains("codex-hotswap: every account has hit its usage limit:\n"), "{err}");
    for a in ["acc1", "acc2"] {
        assert!(err.lines().any(|l| l.trim_start().starts_with(a) && l.contains("back at ")), "{a}: {err}");
    }
    assert!(err.contains(&format!("continue this session later with: codex resume {id}")), "{err}");
    e.assert_no_overlay();
    // nothing available at the start: the same answer before codex runs
    let r = e.t.cmd("hs-run").args(["--on-exhausted", "exit", "--", "exec", "x"]).output().unwrap();
    assert_eq!(r.status.code(), Some(75));
    assert_eq!(e.runs().len(), 2, "codex not started");
}

#[test]
fn all_exhausted_wait_counts_down_and_resumes_when_an_account_is_back() {
    let e = Env::new(2);
    // acc1 comes back 3 s after its limit, acc2 in an hour
    let r = e
        .t
        .cmd("hs-run")
        .args(["--", "exec", "x"])
        .env("FAKE_CODEX_LIMIT", "1,2")
        .env("FAKE_CODEX_RESET_SECS", "3,3600")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(err.contains("every account has hit its usage limit; acc1 is back at"), "{err}");
    let runs = e.runs();
    assert_eq!(runs.len(), 3);
    let id = runs[0]["session_id"].as_str().unwrap();
    assert_eq!(runs[2]["account_id"], "acct-acc1");
    assert_eq!(codex_args(&runs[2]), ["exec", "resume", id, DEFAULT_PROMPT]);
    assert!(err.contains("acc2 hit its usage limit"), "{err}");
    assert!(err.contains("continuing this session on acc1"), "{err}");
}

#[test]
fn wait_countdown_quits_on_ctrl_c_and_restores_the_terminal() {
    let e = Env::new(2);
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "all")]);
    tui.wait_for_text("every account has hit its usage limit; acc1 is back at", T).unwrap();
    tui.wait_for_text("Ctrl-C quits", T).unwrap();
    tui.send(b"\x03");
    assert_eq!(e.finished(&tui), 130);
    assert!(tui.screen_has("stopped waiting for an account"));
    assert_eq!(e.runs().len(), 2);
    e.assert_no_overlay();
}

#[test]
fn exit_codes_are_codex_own_or_128_plus_signal() {
    let e = Env::new(1);
    let r = e.t.cmd("hs-run").args(["--", "exec", "x"]).env("FAKE_CODEX_EXIT", "7").output().unwrap();
    assert_eq!(r.status.code(), Some(7));
    let tui = e.tui(&[], &[("FAKE_CODEX_EXIT", "5")]);
    tui.wait_for_text("› ready", T).unwrap();
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 5);
    let tui = e.tui(&[], &[("FAKE_CODEX_SIGNAL", "9")]);
    tui.wait_for_text("› ready", T).unwrap();
    tui.send(b"d");
    assert_eq!(e.finished(&tui), 137);
    e.assert_no_overlay();
}

#[test]
fn sigterm_and_sighup_reach_codex_and_hs_run_cleans_up() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let e = Env::new(2);
        let tui = e.tui(&[], &[]);
        tui.wait_for_text("› ready", T).unwrap();
        let pid = hs_run_pid(&tui);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::try_from(sig).unwrap()).unwrap();
        assert_eq!(e.finished(&tui), code);
        e.assert_no_overlay();
        assert_eq!(e.runs().len(), 1);
    }
}

#[test]
fn signals_reach_a_non_interactive_codex() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let e = Env::new(1);
        let child = e
            .t
            .cmd("hs-run")
            .args(["--", "exec", "slow"])
            .env("FAKE_CODEX_EXEC_SLEEP_MS", "60000")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // once the fake codex runs (it logs its start), signal hs-run alone
        for _ in 0..400 {
            if !e.runs().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert_eq!(e.runs().len(), 1);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::try_from(sig).unwrap()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stderr));
        e.assert_no_overlay();
    }
}

#[test]
fn window_size_is_copied_and_follows_resizes() {
    let e = Env::new(1);
    let tui = e.tui(&[], &[]);
    tui.wait_for_text("size 24x100", T).unwrap();
    tui.resize(30, 120);
    tui.wait_for_text("size 30x120", T).unwrap();
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
}

#[test]
fn other_commands_go_straight_to_codex_with_the_users_environment() {
    let mut e = Env::new(1);
    let user_home = e.t.root().join("my-codex-home");
    e.t.set("CODEX_HOME", &user_home);
    let r = e.t.run("hs-run", &["--", "--version"]).ok();
    assert_eq!(r.stdout, "codex-cli 0.169.0 (fake)\n");
    let r = e.t.run("hs-run", &["--", "login", "status"]).ok();
    assert_eq!(r.stdout, "fake codex: login status\n");
    let starts = e.all_starts();
    assert_eq!(starts.len(), 2);
    for s in &starts {
        assert_eq!(s["codex_home"].as_str(), Some(user_home.to_str().unwrap()));
    }
    assert!(!e.t.state_dir().join("runtime").exists() || std::fs::read_dir(e.t.state_dir().join("runtime")).unwrap().count() == 0);
}

#[test]
fn real_codex_lookup_skips_the_shim_and_says_how_to_fix_a_missing_one() {
    let mut e = Env::new(1);
    e.t.vars.remove("CODEX_HOTSWAP_REAL_CODEX");
    let base = e.t.vars["PATH"].to_string_lossy().into_owned();
    let shim = e.t.put_shim_on_path();
    let shim_dir = shim.parent().unwrap();
    let real_dir = e.t.root().join("real");
    std::fs::create_dir_all(&real_dir).unwrap();
    // without a real codex on PATH: one line, exit 2, nothing left behind
    let r = e.t.run("hs-run", &["--", "exec", "x"]).code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("hs-run: codex not found on PATH: install it"), "{}", r.stderr);
    e.assert_no_overlay();
    std::os::unix::fs::symlink(bin("fake-codex"), real_dir.join("codex")).unwrap();
    e.t.set("PATH", format!("{}:{}:{base}", shim_dir.display(), real_dir.display()));
    let r = e.t.run("hs-run", &["--", "exec", "x"]).ok();
    assert_eq!(r.stdout, "fake answer to: x\n");
}

#[test]
fn codex_named_by_flag_or_config_and_hs_run_itself_is_skipped_on_path() {
    let mut e = Env::new(1);
    e.t.vars.remove("CODEX_HOTSWAP_REAL_CODEX");
    // on PATH, a `codex` that is hs-run itself (a link to it) does not count
    let links = e.t.root().join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(bin("hs-run"), links.join("codex")).unwrap();
    let base = e.t.vars["PATH"].to_string_lossy().into_owned();
    e.t.set("PATH", format!("{}:{base}", links.display()));
    let r = e.t.run("hs-run", &["--", "exec", "x"]).code(2);
    assert!(r.stderr.starts_with("hs-run: codex not found on PATH"), "{}", r.stderr);
    // --codex
    let fake = bin("fake-codex");
    let r = e.t.run("hs-run", &["--codex", fake.to_str().unwrap(), "--", "exec", "x"]).ok();
    assert_eq!(r.stdout, "fake answer to: x\n");
    // config.json "real_codex"
    std::fs::write(e.t.config_dir().join("config.json"), serde_json::json!({"version": 1, "real_codex": fake}).to_string()).unwrap();
    let r = e.t.run("hs-run", &["--", "exec", "y"]).ok();
    assert_eq!(r.stdout, "fake answer to: y\n");
    // a --codex that is not there: one line naming the setting
    let r = e.t.run("hs-run", &["--codex", "/nonexistent/codex", "--", "exec", "x"]).code(2);
    assert!(r.stderr.contains("codex not found at /nonexistent/codex (from --codex)"), "{}", r.stderr);
    assert_eq!(e.runs().len(), 2);
}

#[test]
fn no_daemon_only_when_codex_lists_it() {
    let e = Env::new(1);
    let tui = e.tui(&["--", "-m", "o3"], &[("FAKE_CODEX_NO_DAEMON_FLAG", "0")]);
    tui.wait_for_text("› ready", T).unwrap();
    tui.send(b"q");
    assert_eq!(e.finished(&tui), 0);
    assert_eq!(codex_args(&e.runs()[0]), ["-m", "o3"]);
}

#[test]
fn a_forked_session_continues_as_the_fork() {
    let e = Env::new(2);
    let tui = e.tui(&["--", "fork", "parent-id"], &[("FAKE_CODEX_LIMIT", "1")]);
    e.quit_after_switch(&tui);
    let runs = e.runs();
    let fork_id = runs[0]["session_id"].as_str().unwrap();
    assert_ne!(fork_id, "parent-id");
    assert_eq!(codex_args(&runs[0]), ["fork", "--no-daemon", "parent-id"]);
    assert_eq!(codex_args(&runs[1]), ["resume", "--no-daemon", fork_id, DEFAULT_PROMPT]);
}

#[test]
fn a_missing_sibling_tool_is_named_and_nothing_is_left_behind() {
    let mut e = Env::new(1);
    let lone = e.t.root().join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(bin("hs-run"), lone.join("hs-run")).unwrap();
    e.t.set("PATH", "/usr/bin:/bin");
    let r = e.t.run(lone.join("hs-run").to_str().unwrap(), &["--", "exec", "x"]).code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot find hs-rotate next to hs-run"), "{}", r.stderr);
    assert!(e.runs().is_empty());
    e.assert_no_overlay();
}

#[test]
fn a_failed_switch_says_how_to_continue_and_cleans_up() {
    let e = Env::new(2);
    // acc2's vault is gone: hs-overlay cannot point the overlay at it
    std::fs::remove_dir_all(e.t.home.join(".codex-acc2")).unwrap();
    let r = e.t.cmd("hs-run").args(["--", "exec", "x"]).env("FAKE_CODEX_LIMIT", "1").output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    let id = e.runs()[0]["session_id"].as_str().unwrap().to_string();
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("hs-run: cannot move the session to the next account"), "{err}");
    assert!(last.contains(&format!("codex resume {id}")), "{err}");
    assert_eq!(e.runs().len(), 1);
    e.assert_no_overlay();

    // the same in the TUI: the terminal is restored before the error is printed
    e.t.run("hs-rotate", &["reset"]).ok();
    e.t.run("hs-rotate", &["use", "acc1"]).ok();
    let tui = e.tui(&[], &[("FAKE_CODEX_LIMIT", "all")]);
    assert_eq!(e.finished(&tui), 2);
    assert!(tui.screen_has("hs-run: cannot move the session to the next account"), "{}", tui.screen());
    e.assert_no_overlay();
}

#[test]
fn on_swap_hook_gets_the_switch_as_json() {
    let e = Env::new(2);
    let out = e.t.root().join("hook.json");
    std::fs::create_dir_all(e.t.config_dir()).unwrap();
    let cfg = serde_json::json!({"version": 1, "on_swap": format!("cat > '{}.tmp' && mv '{0}.tmp' '{0}'", out.display())});
    std::fs::write(e.t.config_dir().join("config.json"), cfg.to_string()).unwrap();
    e.t.cmd("hs-run").args(["--", "exec", "x"]).env("FAKE_CODEX_LIMIT", "1").output().unwrap();
    let mut got = None;
    for _ in 0..400 {
        if let Ok(t) = std::fs::read_to_string(&out) {
            got = Some(t);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let v: Value = serde_json::from_str(got.expect("hook ran").trim()).unwrap();
    assert_eq!(v["type"], "swap");
    assert_eq!(v["from"], "acc1");
    assert_eq!(v["to"], "acc2");
    assert_eq!(v["session_id"], e.runs()[0]["session_id"]);
}

#[test]
fn help_describes_options_and_exit_codes() {
    let e = Env::new(0);
    let r = e.t.run("hs-run", &["--help"]).ok();
    for want in ["--account", "--codex", "--continue-prompt", "--no-continue", "--max-swaps", "--on-exhausted", "75", "128+signal"] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
}

// ---- switching at a turn boundary near the limit (fake codex) ----

mod boundary {
    use super::*;

    const NOTICE: &str = "codex-hotswap: acc1 is at 96% of its 5h window (resets ";

    /// The rollout records of session `id` (every record type), in order.
    fn records(e: &Env, id: &str) -> Vec<Value> {
        let f = regular_files(&e.t.home.join(".codex/sessions")).into_iter().find(|f| f.to_string_lossy().contains(id)).unwrap();
        std::fs::read_to_string(f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn kinds(recs: &[Value]) -> Vec<String> {
        recs.iter().map(|r| r["payload"]["type"].as_str().unwrap_or("").to_string()).collect()
    }

    /// Types a prompt as a person does: the text, a pause, Enter. (The fake codex takes `q`
    /// and `d` as commands: prompts here have neither.)
    fn submit(tui: &Tui, text: &str) {
        tui.type_text(text);
        std::thread::sleep(Duration::from_millis(300));
        tui.send(b"\r");
    }

    fn start(e: &Env, envs: &[(&str, &str)]) -> Tui {
        let tui = e.tui(&[], envs);
        wait_text(e, &tui, "› ready");
        tui
    }

    /// Waits for `text`, showing hs-run's log when it does not come.
    #[track_caller]
    fn wait_text(e: &Env, tui: &Tui, text: &str) {
        tui.wait_for_text(text, T).unwrap_or_else(|err| panic!("{err}\nhs-run's log:\n{}", hs_log(e)));
    }

    /// hs-run's troubleshooting log.
    fn hs_log(e: &Env) -> String {
        std::fs::read_to_string(e.t.root().join("hs-run.log")).unwrap_or_default()
    }

    fn env_with_log(accounts: usize) -> Env {
        let mut e = Env::new(accounts);
        let log = e.t.root().join("hs-run.log");
        e.t.set("CODEX_HOTSWAP_LOG", log);
        e
    }

    #[test]
    fn a_turn_that_ends_near_the_limit_moves_the_session_without_a_prompt() {
        let e = env_with_log(3);
        // the usage crosses 95% mid-turn (the answer's token_count); the turn ends 1.5 s later
        let tui = start(&e, &[("FAKE_CODEX_USED", "96,10"), ("FAKE_CODEX_TURN_MS", "1500")]);
        submit(&tui, "first prompt");
        wait_text(&e, &tui, NOTICE);
        tui.wait_for_text("; this session continues on acc2", T).unwrap();
        tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
        wait_text(&e, &tui, "› ready");
        let runs = e.runs();
        let id = runs[0]["session_id"].as_str().unwrap().to_string();
        assert_eq!(codex_args(&runs[1]), ["resume", "--no-daemon", &id], "no continue prompt: nothing was cut");
        assert_eq!((runs[0]["account_id"].as_str(), runs[1]["account_id"].as_str()), (Some("acct-acc1"), Some("acct-acc2")));
        // the turn ended before codex was stopped: its answer and task_complete come before the
        // resumed run's first record, and no turn was started for it
        let k = kinds(&records(&e, &id));
        let done = k.iter().position(|x| x == "task_complete").expect("the turn completed");
        assert_eq!(&k[done - 1], "agent_message");
        assert_eq!(k.iter().filter(|x| *x == "task_started").count(), 1, "{k:?}");
        assert!(!e.log.with_extension("cut").exists() && !PathBuf::from(format!("{}.cut", e.log.display())).exists());
        // the next prompt goes out on acc2, in the same session
        submit(&tui, "next turn");
        wait_text(&e, &tui, "fake answer to: next turn");
        assert_eq!(turns_with(&e.t, "next turn"), 1);
        let swaps = e.swaps();
        assert_eq!(swaps.len(), 1, "{swaps:?}");
        assert_eq!((swaps[0]["from"].as_str(), swaps[0]["to"].as_str(), swaps[0]["kind"].as_str()), (Some("acc1"), Some("acc2"), Some("near_limit")));
        assert_eq!(swaps[0]["session_id"].as_str(), Some(id.as_str()));
        assert_eq!(e.state_of("acc1")["state"], "near_limit");
        assert_eq!(e.state_of("acc2")["state"], "available");
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
        assert_eq!(e.runs().len(), 2, "one switch; acc3 untouched");
        e.assert_no_overlay();
        assert!(hs_log(&e).contains("turn ended on acc1: 5h window at 96%: stopping codex to continue on acc2"), "{}", hs_log(&e));
    }

    #[test]
    fn with_the_threshold_off_a_turn_ends_where_it_is() {
        let e = env_with_log(2);
        e.t.run("hs-config", &["set", "switch_at", "off"]).ok();
        let tui = start(&e, &[("FAKE_CODEX_USED", "99")]);
        submit(&tui, "first prompt");
        wait_text(&e, &tui, "fake answer to: first prompt");
        tui.wait_until(|_| hs_log(&e).contains("turn ended on acc1: staying"), T).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(e.runs().len(), 1);
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
        assert!(e.swaps().is_empty());
    }

    #[test]
    fn text_in_the_composer_holds_the_switch_until_the_next_turn_end() {
        let e = env_with_log(2);
        let tui = start(&e, &[("FAKE_CODEX_USED", "96,10"), ("FAKE_CODEX_TURN_MS", "1200")]);
        submit(&tui, "first prompt");
        // typed during the turn, not sent: it sits in the composer when the turn ends
        std::thread::sleep(Duration::from_millis(400));
        tui.type_text("more to say");
        wait_text(&e, &tui, "fake answer to: first prompt");
        tui.wait_until(|_| hs_log(&e).contains("the composer may hold text"), T).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(e.runs().len(), 1, "no switch while text may be in the composer");
        assert!(tui.screen_has("› more to say"), "{}", tui.screen());
        // sent: that turn's end is the next boundary
        tui.send(b"\r");
        wait_text(&e, &tui, NOTICE);
        tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
        assert_eq!(turns_with(&e.t, "more to say"), 1, "the text went out on acc1 before the switch");
        wait_text(&e, &tui, "› ready");
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
    }

    #[test]
    fn a_stale_reading_does_not_switch() {
        let e = env_with_log(2);
        // 99%, but its window reset a minute ago
        let tui = start(&e, &[("FAKE_CODEX_USED", "99"), ("FAKE_CODEX_USED_RESETS_IN", "-60")]);
        submit(&tui, "first prompt");
        tui.wait_until(|_| hs_log(&e).contains("turn ended on acc1: staying, under its thresholds (5h 99% (stale)"), T).unwrap();
        assert_eq!(e.runs().len(), 1);
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
        assert_eq!(e.state_of("acc1")["state"], "available", "{:?}", e.state_of("acc1"));
    }

    #[test]
    fn a_plan_with_only_a_weekly_window_switches_at_its_threshold() {
        let e = env_with_log(2);
        let tui = start(&e, &[("FAKE_CODEX_WINDOWS", "weekly"), ("FAKE_CODEX_USED", "99,10")]);
        submit(&tui, "first prompt");
        wait_text(&e, &tui, "codex-hotswap: acc1 is at 99% of its weekly window (resets ");
        tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
        wait_text(&e, &tui, "› ready");
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
        let st = e.state_of("acc1");
        assert_eq!((st["state"].as_str(), st["windows"][0]["name"].as_str()), (Some("near_limit"), Some("week")));
    }

    #[test]
    fn every_account_over_its_threshold_stays_put_without_a_loop() {
        let e = env_with_log(3);
        let now = chrono::Utc::now();
        for (name, pct) in [("acc2", 97.0), ("acc3", 99.0)] {
            let line = serde_json::json!({"type":"rate_limits","account":name,"at":now.to_rfc3339(),
                "primary":{"used_percent":pct,"window_minutes":300,"resets_at":(now + chrono::Duration::hours(2)).to_rfc3339()},"secondary":null});
            e.t.run_stdin("hs-rotate", &["record", "--event", "-"], line.to_string().as_bytes()).ok();
        }
        let tui = start(&e, &[("FAKE_CODEX_USED", "96")]);
        for (i, p) in ["first prompt", "next turn"].into_iter().enumerate() {
            submit(&tui, p);
            // (the next prompt only once hs-run has judged this turn's end: typed earlier, it
            // would hold the switch back, as text in the composer does)
            let staying = |_: &str| hs_log(&e).matches("no other account is under its thresholds: staying").count() == i + 1;
            tui.wait_until(staying, T).unwrap_or_else(|err| panic!("{err}\n{}", hs_log(&e)));
        }
        assert_eq!(e.runs().len(), 1);
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
        assert!(e.swaps().is_empty());
        // a new session starts on the least used account
        assert_eq!(e.t.run("hs-rotate", &["pick"]).ok().stdout, "acc1\n");
    }

    #[test]
    fn keys_typed_during_a_boundary_switch_reach_the_resumed_codex_once_its_composer_is_drawn() {
        let e = env_with_log(2);
        // the old codex takes 800 ms to shut down, the new one 800 ms to draw its composer
        let envs = [("FAKE_CODEX_USED", "96,10"), ("FAKE_CODEX_SHUTDOWN_MS", "800"), ("FAKE_CODEX_READY_MS", "800")];
        let tui = start(&e, &envs);
        submit(&tui, "first prompt");
        wait_text(&e, &tui, "Shutting down");
        // the next prompt, typed while codex shuts down
        tui.type_text("next prompt");
        std::thread::sleep(Duration::from_millis(100));
        tui.send(b"\r");
        tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
        wait_text(&e, &tui, "fake answer to: next prompt");
        assert_eq!(turns_with(&e.t, "next prompt"), 1);
        let runs = e.runs();
        let k = kinds(&records(&e, runs[0]["session_id"].as_str().unwrap()));
        assert_eq!(k.iter().filter(|x| *x == "task_started").count(), 2, "{k:?}");
        let early = format!("{}.early", e.log.display());
        assert!(!std::path::Path::new(&early).exists(), "keys reached codex before its composer: {:?}", std::fs::read_to_string(&early));
        assert!(hs_log(&e).contains("codex shows its composer: typing the 11 key bytes held for it, Enter after a pause"), "{}", hs_log(&e));
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
    }

    #[test]
    fn keys_typed_during_a_limit_switch_are_kept_too() {
        let e = env_with_log(2);
        let envs = [("FAKE_CODEX_LIMIT", "1"), ("FAKE_CODEX_SHUTDOWN_MS", "800"), ("FAKE_CODEX_READY_MS", "800")];
        let tui = start(&e, &envs);
        wait_text(&e, &tui, "Shutting down");
        tui.type_text("type meanwhile");
        tui.wait_until(|_| e.runs().len() == 2, T).unwrap();
        wait_text(&e, &tui, "› type meanwhile");
        assert!(!std::path::Path::new(&format!("{}.early", e.log.display())).exists());
        tui.send(b"q");
        assert_eq!(e.finished(&tui), 0);
    }

    #[test]
    fn exec_is_never_stopped_for_a_threshold_and_the_next_run_starts_elsewhere() {
        let e = Env::new(2);
        let now = chrono::Utc::now();
        let line = serde_json::json!({"type":"rate_limits","account":"acc1","at":now.to_rfc3339(),
            "primary":{"used_percent":96.0,"window_minutes":300,"resets_at":(now + chrono::Duration::hours(2)).to_rfc3339()},"secondary":null});
        e.t.run_stdin("hs-rotate", &["record", "--event", "-"], line.to_string().as_bytes()).ok();
        let r = e.t.cmd("hs-run").args(["--", "exec", "--skip-git-repo-check", "do it"]).output().unwrap();
        assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
        let runs = e.runs();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["account_id"], "acct-acc2");
        assert!(e.swaps().is_empty());
    }
}

// ---- the real codex 0.169.0 against the mock backend ----

mod real {
    use super::*;
    use crate::support::auth::FakeAccount;
    use crate::support::mock::{Behaviour, RequestRecord};
    use crate::support::real::RealWorld;

    const WAIT: Duration = Duration::from_secs(90);
    const READY: &str = "Ask Codex to do anything";

    /// Accounts acc1..acc3 logged in at the mock, acc1 at its usage limit, acc2 and acc3
    /// answering; hs-run runs the real codex.
    fn world() -> RealWorld {
        let [a1, a2, a3] = ["acc1", "acc2", "acc3"].map(|n| FakeAccount::new(n, "plus"));
        let w = RealWorld::new(&[&a1, &a2, &a3]).with_hs_run();
        w.mock.set_behaviour("acct-acc1", Behaviour::usage_limit("plus", chrono::Utc::now().timestamp() + 3 * 3600));
        w.mock.set_behaviour("acct-acc2", Behaviour::Answer("Hello from acc2".into()));
        w.mock.set_behaviour("acct-acc3", Behaviour::Answer("Hello from acc3".into()));
        w
    }

    /// hs-run in the real-codex world.
    impl RealWorld {
        fn hs_run(&self) -> std::process::Command {
            let mut c = self.env.cmd("hs-run");
            c.current_dir(&self.work);
            c
        }

        /// The first turn, the limited one on acc1, and the next turn: on acc2, same session.
        #[track_caller]
        fn assert_moved_to_acc2(&self, first_prompt: &str, screen: impl Fn() -> String) -> (RequestRecord, RequestRecord) {
            let first = self
                .mock
                .wait_for(|r| r.is_turn() && r.body.contains(first_prompt), WAIT)
                .unwrap_or_else(|| panic!("the first turn did not reach the mock; screen:\n{}", screen()));
            assert_eq!((first.account_id.as_deref(), first.status), (Some("acct-acc1"), 429));
            let next = self
                .mock
                .wait_for(|r| r.is_turn() && r.account_id.as_deref() == Some("acct-acc2"), WAIT)
                .unwrap_or_else(|| panic!("no turn on acc2 reached the mock; screen:\n{}", screen()));
            assert_eq!(next.status, 200);
            assert!(next.session_id.is_some());
            assert_eq!(next.session_id, first.session_id, "same session on the next account");
            assert!(next.body.contains(DEFAULT_PROMPT), "the continue prompt was sent");
            assert!(next.body.contains(first_prompt), "the resumed thread carries the old conversation");
            (first, next)
        }

        #[track_caller]
        fn assert_acc3_untouched(&self) {
            let acc3: Vec<_> = self.mock.requests().into_iter().filter(|r| r.account_id.as_deref() == Some("acct-acc3")).collect();
            assert!(acc3.is_empty(), "acc3 was used: {acc3:?}");
        }
    }

    #[test]
    fn real_tui_moves_the_session_to_acc2_on_a_usage_limit() {
        let r = world();
        let tui = Tui::spawn(r.hs_run(), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("first question");
        let (first, _) = r.assert_moved_to_acc2("first question", || tui.screen());
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // codex was stopped the clean way (Ctrl-C twice): it said goodbye before the notice
        let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
        let bye = raw.find("To continue this session, run:");
        let id = raw.find(&format!("codex resume {}", first.session_id.as_deref().unwrap()));
        let notice = raw.find("codex-hotswap: acc1 hit its usage limit (back at ");
        assert!(bye.is_some() && bye < id && id < notice, "clean exit message, then the notice:\n{raw}");
        // the terminal's answers to the old codex's last queries are not typed into the new one
        // (a tty in cooked mode would echo them as `^[[?62;22c`)
        assert!(!raw[notice.unwrap()..].contains("^[["), "{raw}");
        r.assert_acc3_untouched();
        let swaps = swaps(&r.env);
        assert_eq!(swaps.len(), 1, "{swaps:?}");
        assert_eq!((swaps[0]["from"].as_str(), swaps[0]["to"].as_str()), (Some("acc1"), Some("acc2")));
        // quit codex the way a user does: hs-run ends with codex's code and cleans up
        let mut tui = tui;
        let st = quit_like_a_user(&mut tui);
        assert_eq!(st.code(), Some(0), "{}", tui.screen());
        assert_no_overlay(&r.env);
        let turns_on_acc2 = r.mock.turns().into_iter().filter(|t| t.account_id.as_deref() == Some("acct-acc2")).count();
        assert!((1..=1 + resends(&r)).contains(&turns_on_acc2), "one limit, one switch, one resumed turn: {turns_on_acc2}");
    }

    /// acc1's answers report 96 % of its 5 h window; acc2 and acc3 answer at 42.5 %.
    fn near_limit_world() -> RealWorld {
        let [a1, a2, a3] = ["acc1", "acc2", "acc3"].map(|n| FakeAccount::new(n, "plus"));
        let w = RealWorld::new(&[&a1, &a2, &a3]).with_hs_run();
        for n in ["acc1", "acc2", "acc3"] {
            w.mock.set_behaviour(&format!("acct-{n}"), Behaviour::Answer(format!("Hello from {n}")));
        }
        w.mock.set_used_percent("acct-acc1", 96.0);
        w
    }

    fn wait_log(r: &RealWorld, what: &str, tui: &Tui) {
        let deadline = std::time::Instant::now() + WAIT;
        while !std::fs::read_to_string(r.hs_run_log()).unwrap_or_default().contains(what) {
            assert!(std::time::Instant::now() < deadline, "hs-run's log never said {what:?}; screen:\n{}\nlog:\n{}", tui.screen(), std::fs::read_to_string(r.hs_run_log()).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn real_tui_moves_the_session_to_acc2_at_the_turn_boundary_near_the_limit() {
        let r = near_limit_world();
        let tui = Tui::spawn(r.hs_run(), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("first question");
        let first = r.mock.wait_for(|q| q.is_turn() && q.body.contains("first question"), WAIT).expect("the first turn");
        assert_eq!((first.account_id.as_deref(), first.status), (Some("acct-acc1"), 200));
        tui.wait_for_text("codex-hotswap: acc1 is at 96% of its 5h window (resets ", WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.wait_for_text("; this session continues on acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // the resumed codex has drawn its composer: the next prompt goes out on acc2
        wait_log(&r, "codex shows its composer", &tui);
        tui.submit("second question");
        let next = r
            .mock
            .wait_for(|q| q.is_turn() && q.body.contains("second question"), WAIT)
            .unwrap_or_else(|| panic!("the second prompt did not reach the mock; screen:\n{}", tui.screen()));
        assert_eq!((next.account_id.as_deref(), next.status), (Some("acct-acc2"), 200));
        assert_eq!(next.session_id, first.session_id, "same session on the next account");
        assert!(next.body.contains("first question"), "the resumed thread carries the old conversation");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // nothing was cut and nothing was added: one turn on acc1, answered; no continue prompt
        let turns = r.mock.turns();
        let on = |a: &str| turns.iter().filter(|t| t.account_id.as_deref() == Some(a)).count();
        assert_eq!((on("acct-acc1"), on("acct-acc2")), (1, 1), "{}", r.requests_summary());
        assert!(turns.iter().all(|t| t.status == 200 && !t.body.contains(DEFAULT_PROMPT)), "{}", r.requests_summary());
        r.assert_acc3_untouched();
        let swaps = swaps(&r.env);
        assert_eq!(swaps.len(), 1, "{swaps:?}");
        assert_eq!((swaps[0]["from"].as_str(), swaps[0]["to"].as_str(), swaps[0]["kind"].as_str()), (Some("acc1"), Some("acc2"), Some("near_limit")));
        let mut tui = tui;
        let st = quit_like_a_user(&mut tui);
        assert_eq!(st.code(), Some(0), "{}", tui.screen());
        assert_no_overlay(&r.env);
    }

    /// The next prompt typed while codex 0.169.0 shuts down (about two seconds) reaches acc2.
    #[test]
    fn real_tui_keys_typed_during_a_boundary_switch_reach_acc2() {
        let r = near_limit_world();
        let tui = Tui::spawn(r.hs_run(), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("first question");
        let first = r.mock.wait_for(|q| q.is_turn() && q.body.contains("first question"), WAIT).expect("the first turn");
        wait_log(&r, "stopping codex to continue on acc2", &tui);
        tui.submit("typed meanwhile");
        let next = r
            .mock
            .wait_for(|q| q.is_turn() && q.body.contains("typed meanwhile"), WAIT)
            .unwrap_or_else(|| panic!("the prompt typed during the switch did not reach the mock; screen:\n{}", tui.screen()));
        assert_eq!((next.account_id.as_deref(), next.status), (Some("acct-acc2"), 200));
        assert_eq!(next.session_id, first.session_id, "in the same session");
        let log = std::fs::read_to_string(r.hs_run_log()).unwrap();
        assert!(log.contains("codex shows its composer: typing the 15 key bytes held for it, Enter after a pause"), "{log}");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let mut tui = tui;
        assert_eq!(quit_like_a_user(&mut tui).code(), Some(0));
    }

    #[test]
    fn real_tui_with_the_threshold_off_stays_on_acc1() {
        let r = near_limit_world();
        r.env.run("hs-config", &["set", "switch_at", "off"]).ok();
        let tui = Tui::spawn(r.hs_run(), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("first question");
        tui.wait_for_text("Hello from acc1", WAIT).unwrap_or_else(|e| panic!("{e}"));
        wait_log(&r, "turn ended on acc1: staying", &tui);
        // codex 0.169.0 itself offers a cheaper model past 90 % (a popup that takes the next
        // keys): keep the model, as a user who stays on a nearly spent account does
        tui.wait_for_text("Approaching rate limits", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // (A key pressed the moment the popup is drawn is now and then not taken by codex, 0.169.0
        // and 0.171.0 alike: press it again, as a person would, while the popup stays.)
        let closed = |tui: &Tui| tui.wait_until(|s| !s.contains("Approaching rate limits"), Duration::from_secs(3)).is_ok();
        let pressed = (0..4).any(|_| {
            tui.send(b"2");
            closed(&tui)
        });
        assert!(pressed, "the popup stayed after four presses of 2:\n{}", tui.screen());
        tui.submit("second question");
        let next = r
            .mock
            .wait_for(|q| q.is_turn() && q.body.contains("second question"), WAIT)
            .unwrap_or_else(|| panic!("the second prompt did not reach the mock; screen:\n{}", tui.screen()));
        assert_eq!(next.account_id.as_deref(), Some("acct-acc1"));
        assert!(swaps(&r.env).is_empty());
        assert!(r.mock.requests().iter().all(|q| q.account_id.as_deref() != Some("acct-acc2")), "{}", r.requests_summary());
        let mut tui = tui;
        assert_eq!(quit_like_a_user(&mut tui).code(), Some(0));
    }

    /// How often hs-run typed the continue prompt into a resumed codex that sent none
    /// (`resend_prompt_after`). codex 0.169.0 can hold a resumed session's prompt (apparently
    /// behind the rate-limit recovery the old account's replayed limit sets) and never send it;
    /// the typed prompt makes it go on, and it may then send the held one too: one extra turn.
    fn resends(r: &RealWorld) -> usize {
        let log = std::fs::read_to_string(r.hs_run_log()).unwrap_or_default();
        log.matches("typing the continue prompt").count()
    }

    /// Ctrl-C until codex quits, as a person does: one closes a popup or interrupts what still
    /// runs, and one sent while codex is shutting down can cut its shutdown short, so the next
    /// goes only when codex is still there after a while.
    fn quit_like_a_user(tui: &mut Tui) -> std::process::ExitStatus {
        for _ in 0..5 {
            tui.send(b"\x03");
            if let Some(st) = tui.wait_exit(Duration::from_secs(4)) {
                return st;
            }
        }
        panic!("hs-run did not exit when codex should have; screen:\n{}", tui.screen())
    }

    /// acc1 and acc2 both at their limit: the session goes acc1 → acc2 → acc3, one switch per
    /// limit, although the resumed TUI redraws the earlier banners each time.
    fn two_switches(acc2_reset_offset: i64) {
        let r = world();
        let acc1_reset = chrono::Utc::now().timestamp() + 3 * 3600;
        r.mock.set_behaviour("acct-acc1", Behaviour::usage_limit("plus", acc1_reset));
        r.mock.set_behaviour("acct-acc2", Behaviour::usage_limit("plus", acc1_reset + acc2_reset_offset));
        let tui = Tui::spawn(r.hs_run(), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("question for three");
        tui.wait_for_text("Hello from acc3", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let turns: Vec<_> = r.mock.turns();
        let mut seen: Vec<_> = turns.iter().map(|t| (t.account_id.clone().unwrap_or_default(), t.status)).collect();
        if resends(&r) > 0 {
            // see `resends`: codex may then send its held prompt after the typed one
            seen.dedup();
        }
        assert_eq!(seen, [("acct-acc1".to_string(), 429), ("acct-acc2".to_string(), 429), ("acct-acc3".to_string(), 200)]);
        assert!(turns.iter().all(|t| t.session_id.is_some() && t.session_id == turns[0].session_id), "one session: {turns:?}");
        let swaps = swaps(&r.env);
        let pairs: Vec<_> = swaps.iter().map(|s| (s["from"].as_str().unwrap(), s["to"].as_str().unwrap())).collect();
        assert_eq!(pairs, [("acc1", "acc2"), ("acc2", "acc3")]);
    }

    #[test]
    fn real_tui_switches_twice_when_two_accounts_are_out() {
        two_switches(2 * 3600);
    }

    /// Both limits show the same "try again at" text: only the rollout tells the second one
    /// from a redraw of the first.
    #[test]
    fn real_tui_second_limit_with_the_same_reset_text_still_switches() {
        two_switches(0);
    }

    #[test]
    fn real_tui_all_accounts_out_exits_75_with_the_list() {
        let r = world();
        for (i, a) in ["acct-acc1", "acct-acc2", "acct-acc3"].iter().enumerate() {
            r.mock.set_behaviour(a, Behaviour::usage_limit("plus", chrono::Utc::now().timestamp() + 3600 * (i as i64 + 1)));
        }
        let mut cmd = r.hs_run();
        cmd.args(["--on-exhausted", "exit"]);
        let mut tui = Tui::spawn(cmd, 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("nobody can answer");
        let st = tui.wait_exit(WAIT).unwrap_or_else(|| panic!("hs-run did not exit; screen:\n{}", tui.screen()));
        assert_eq!(st.code(), Some(75), "{}", tui.screen());
        let session = r.mock.turns()[0].session_id.clone().unwrap();
        tui.wait_for_text(&format!("continue this session later with: codex resume {session}"), WAIT)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(tui.screen_has("codex-hotswap: every account has hit its usage limit:"), "{}", tui.screen());
        let turns = r.mock.turns().len();
        assert!((3..=3 + resends(&r)).contains(&turns), "one turn per account: {turns}");
        assert_no_overlay(&r.env);
    }

    /// The facts hs-run's session-id lookup stands on: with Node 20 the npm launcher runs the
    /// native codex as a child, and that child holds the session's rollout open for writing.
    #[test]
    fn real_codex_holds_its_rollout_open_in_a_child_of_the_launcher() {
        let r = world();
        let home = r.env.state_dir().join("plain-home");
        r.mock.codex_home(&home, &FakeAccount::new("acc2", "plus"), &[&r.work]);
        let mut cmd = crate::support::tui::codex_command(&r.env, &r.mock, &home, &r.work);
        cmd.arg("--no-daemon");
        let tui = Tui::spawn(cmd, 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("where is my rollout");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let holder = shared::procs::process_tree(tui.pid()).into_iter().find(|p| {
            shared::procs::files_open_for_writing(*p).iter().any(|f| shared::run::rollout_watch::is_rollout_name(f))
        });
        let found = shared::procs::find_open_file(tui.pid(), true, shared::run::rollout_watch::is_rollout_name)
            .expect("the rollout is open in the codex process tree");
        let meta = shared::run::rollout_watch::read_session_meta(&found).expect("session_meta first");
        let turn = r.mock.turns().pop().unwrap();
        assert_eq!(turn.session_id.as_deref(), Some(meta.id.as_str()), "the rollout's id is the session-id header");
        let launcher_is_node = std::fs::read_to_string(format!("/proc/{}/comm", tui.pid())).is_ok_and(|c| c.trim() == "node");
        if launcher_is_node {
            assert_ne!(holder, Some(tui.pid()), "Node 20: a child process holds the rollout");
        }
    }

    #[test]
    fn real_exec_through_the_shim_moves_the_session_to_acc2_without_a_terminal() {
        let mut r = world();
        // plain `codex` is the codex-hotswap shim, which runs hs-run
        let shim = r.env.put_shim_on_path();
        let mut cmd = r.env.cmd(shim.to_str().unwrap());
        let out = cmd.current_dir(&r.work).args(["exec", "--skip-git-repo-check", "exec question"]).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
        r.assert_moved_to_acc2("exec question", || format!("{stdout}\n{stderr}"));
        assert!(stdout.contains("Hello from acc2"), "{stdout}");
        assert!(stderr.contains("codex-hotswap: acc1 hit its usage limit (back at "), "{stderr}");
        r.assert_acc3_untouched();
        assert_no_overlay(&r.env);
    }

    #[test]
    fn real_exec_json_moves_the_session_to_acc2() {
        let r = world();
        let out = r
            .hs_run()
            .args(["--", "exec", "--json", "--skip-git-repo-check", "json question"])
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
        r.assert_moved_to_acc2("json question", || format!("{stdout}\n{stderr}"));
        // stdout stays codex's JSON lines: the failed turn of the first run, then the answer
        let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
        assert!(lines.iter().any(|v| v["type"] == "turn.failed"), "{stdout}");
        assert!(stdout.contains("Hello from acc2"), "{stdout}");
        assert!(stderr.contains("continuing this session on acc2"), "{stderr}");
        r.assert_acc3_untouched();
    }

    /// A shared config.toml asking for the keyring store (where none answers, as here, codex
    /// 0.169.0 then sends no token at all: 401) and a user's own `-c` asking for it: hs-run still
    /// runs codex on the vault's login file, says it ignored the override, and the vault's
    /// file and the runtime home's link stay as they were.
    #[test]
    fn real_exec_runs_on_the_vault_file_when_config_asks_for_the_keyring() {
        let a1 = FakeAccount::new("acc1", "plus");
        let r = RealWorld::new(&[&a1]).with_hs_run();
        r.mock.set_behaviour("acct-acc1", Behaviour::Answer("Hello from the file store".into()));
        let config = r.shared().join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("cli_auth_credentials_store = \"keyring\"\n{text}")).unwrap();
        let before = std::fs::read(r.vault_auth(&a1)).unwrap();
        let out = r
            .hs_run()
            .args(["--", "-c", "cli_auth_credentials_store=\"keyring\"", "exec", "--skip-git-repo-check", "keyring question"])
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.contains("Hello from the file store"), "{stdout}");
        assert!(
            stderr.contains("hs-run: ignoring `-c cli_auth_credentials_store=\"keyring\"`: codex-hotswap runs codex with the file credential store"),
            "{stderr}"
        );
        let turn = r.mock.wait_for(|q| q.is_turn() && q.body.contains("keyring question"), WAIT).expect("the turn reached the mock");
        assert_eq!((turn.account_id.as_deref(), turn.status), (Some("acct-acc1"), 200));
        assert_eq!(std::fs::read(r.vault_auth(&a1)).unwrap(), before, "the vault's login is untouched");
        assert_no_overlay(&r.env);
    }
}
