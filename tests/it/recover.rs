//! hs-run when the account a session lands on cannot carry it: a dead login (moved on to the
//! next account, marked `login_needed`), a refused resume (carried over as text into a new
//! session). First with the fake codex, then with the real codex 0.169.0 against the mock.

use crate::support::env::{bin, TestEnv};
use crate::support::tui::Tui;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_PROMPT: &str = "The previous account hit its usage limit. Continue where you left off.";
/// The default continue prompt after a switch for a dead login.
const LOGIN_PROMPT: &str = "The previous account's login stopped working. Continue where you left off.";
const T: Duration = Duration::from_secs(20);
const DEAD: &str = "Your access token could not be refreshed because your refresh token was revoked.";

/// Accounts acc1..accN logged in (fake logins), hs-run running the fake codex.
fn env(accounts: usize) -> (TestEnv, PathBuf) {
    let mut t = TestEnv::new();
    for i in 1..=accounts {
        t.add_logged_in(&format!("acc{i}"));
    }
    let log = t.use_fake_codex();
    (t, log)
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The model sessions the fake codex ran, in order.
fn runs(log: &std::path::Path) -> Vec<Value> {
    lines(log).into_iter().filter(|v| v["model"] == true).collect()
}

fn events(t: &TestEnv) -> Vec<Value> {
    lines(&t.state_dir().join("events.jsonl"))
}

fn state_of(t: &TestEnv, name: &str) -> Value {
    t.run("hs-rotate", &["status", "--json"]).ok().json_lines().into_iter().find(|s| s["name"] == name).unwrap()
}

/// What codex was started with, less hs-run's file-store override (checked there).
fn args(run: &Value) -> Vec<String> {
    crate::run::codex_args(run)
}

/// hs-run with `args`, acc1 at its limit (the fake's first run) and the fake's `env`, run to
/// its end.
fn limited_run(t: &TestEnv, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = t.cmd("hs-run");
    cmd.args(args).env("FAKE_CODEX_LIMIT", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn exec_dead_login_on_the_next_account_moves_on_and_marks_it() {
    let (t, log) = env(3);
    let r = limited_run(&t, &["--", "exec", "--skip-git-repo-check", "do it"], &[("FAKE_CODEX_DEAD_LOGIN", "acct-acc2")]);
    let (out, err) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.status.code(), Some(0), "{err}");
    // acc2 resumed after acc1's limit says so; acc3 after acc2's dead login says that instead
    assert_eq!(out, format!("fake answer to: {LOGIN_PROMPT}\n"));
    let runs = runs(&log);
    let accounts: Vec<&str> = runs.iter().map(|r| r["account_id"].as_str().unwrap()).collect();
    assert_eq!(accounts, ["acct-acc1", "acct-acc2", "acct-acc3"], "each account tried once");
    let id = runs[0]["session_id"].as_str().unwrap();
    assert_eq!(args(&runs[1]), ["exec", "--skip-git-repo-check", "resume", id, DEFAULT_PROMPT]);
    assert_eq!(args(&runs[2]), ["exec", "--skip-git-repo-check", "resume", id, LOGIN_PROMPT]);
    assert!(err.contains(&format!("codex-hotswap: acc2 cannot log in ({DEAD}")), "{err}");
    assert!(err.contains("fix: codex-hotswap login acc2); continuing this session on acc3\n"), "{err}");
    // the rotation knows: acc2 needs a login (until it gets one), acc1 is exhausted
    let acc2 = state_of(&t, "acc2");
    assert_eq!((acc2["state"].as_str(), acc2["fix"].as_str()), (Some("login_needed"), Some("codex-hotswap login acc2")));
    assert!(acc2["reason"].as_str().unwrap().starts_with(DEAD), "{acc2}");
    assert_eq!(state_of(&t, "acc1")["state"], "exhausted");
    // the switch log: the limit, then the dead login, each its own kind
    let ev = events(&t);
    let seen: Vec<(&str, &str, Option<&str>)> =
        ev.iter().map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap(), e["how"].as_str())).collect();
    assert_eq!(seen, [("acc1", "acc2", None), ("acc2", "acc3", Some("login_needed"))]);
    assert_eq!(ev[1]["session_id"].as_str(), Some(id));
    // the vault was left alone
    assert!(t.vault_auth("acc2").is_file());
    // `reset` does not clear a dead login; a new login does (hs-vault login, here with a fake
    // `codex login` that leaves the vault's login as it is)
    t.run("hs-rotate", &["reset"]).ok();
    assert_eq!(state_of(&t, "acc2")["state"], "login_needed");
    let text = t.run("hs-rotate", &["status"]).ok().stdout;
    assert!(text.contains("acc2  login needed (fix: codex-hotswap login acc2)"), "{text}");
    let fake = bin("fake-codex");
    let login = t.run("hs-vault", &["login", "acc2", "--codex", fake.to_str().unwrap()]).ok();
    assert!(login.stdout.contains("acc2 logged in"), "{}", login.stdout);
    assert_eq!(state_of(&t, "acc2")["state"], "available");
    assert!(state_of(&t, "acc2").get("fix").is_none());
}

#[test]
fn login_needed_by_hand_and_cleared() {
    let (t, _) = env(2);
    let out = t.run("hs-rotate", &["login-needed", "acc1", "--reason", "revoked"]).ok().stdout;
    assert_eq!(out, "acc1 needs a new login: codex-hotswap login acc1\n");
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc2\n");
    t.run("hs-rotate", &["login-needed", "nope"]).code(2);
    let used = t.run("hs-rotate", &["use", "acc1"]).ok();
    assert_eq!(used.stderr, "hs-rotate: note: acc1 needs a new login (codex-hotswap login acc1)\n");
    assert_eq!(t.run("hs-rotate", &["login-needed", "acc1", "--clear"]).ok().stdout, "acc1 is available again\n");
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc1\n");
}

#[test]
fn a_continue_prompt_of_ones_own_is_sent_whatever_the_reason() {
    let (t, log) = env(3);
    let r = limited_run(&t, &["--continue-prompt", "keep going", "--", "exec", "--skip-git-repo-check", "do it"], &[("FAKE_CODEX_DEAD_LOGIN", "acct-acc2")]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "fake answer to: keep going\n");
    let runs = runs(&log);
    let id = runs[0]["session_id"].as_str().unwrap();
    for r in &runs[1..] {
        assert_eq!(args(r), ["exec", "--skip-git-repo-check", "resume", id, "keep going"]);
    }
}

#[test]
fn every_account_dead_or_exhausted_exits_75_naming_the_logins() {
    let (t, log) = env(2);
    let r = limited_run(&t, &["--on-exhausted", "exit", "--", "exec", "x"], &[("FAKE_CODEX_DEAD_LOGIN", "acct-acc2")]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(75), "{err}");
    assert_eq!(runs(&log).len(), 2, "no account tried twice: {err}");
    assert!(err.contains("codex-hotswap: no account is available (usage limits, logins codex refused):\n"), "{err}");
    assert!(err.lines().any(|l| l.trim_start().starts_with("acc1") && l.contains("back at ")), "{err}");
    assert!(err.contains("acc2  needs a new login (fix: codex-hotswap login acc2)"), "{err}");
    // doctor names the fix
    let front = crate::support::env::repo_root().join("shell/codex-hotswap");
    let doc = t.run(front.to_str().unwrap(), &["doctor"]).code(1);
    assert!(doc.stdout.contains("problem  acc2 needs a new login") && doc.stdout.contains("fix: codex-hotswap login acc2"), "{}", doc.stdout);
}

/// The fake TUI through hs-run with `accounts`, acc1 at its limit and `trouble` set: waits for
/// the third codex, quits it, checks hs-run's exit 0; returns the fake's runs.
fn tui_three_runs(accounts: usize, trouble: (&str, &str)) -> (TestEnv, Vec<Value>) {
    let (t, log) = env(accounts);
    let mut cmd = t.cmd("hs-run");
    cmd.env("FAKE_CODEX_LIMIT", "1").env(trouble.0, trouble.1);
    let mut tui = Tui::spawn(cmd, 24, 100);
    tui.wait_until(|_| runs(&log).len() == 3, T).unwrap_or_else(|e| panic!("{e}"));
    tui.wait_for_text("› ready", T).unwrap();
    tui.send(b"q");
    assert_eq!(tui.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", tui.screen());
    (t, runs(&log))
}

#[test]
fn tui_dead_login_moves_on_to_the_next_account() {
    let (t, runs) = tui_three_runs(3, ("FAKE_CODEX_DEAD_LOGIN", "acct-acc2"));
    assert_eq!(runs[2]["account_id"], "acct-acc3");
    let id = runs[0]["session_id"].as_str().unwrap();
    assert_eq!(args(&runs[2]), ["resume", "--no-daemon", id, LOGIN_PROMPT]);
    assert_eq!(state_of(&t, "acc2")["state"], "login_needed");
}

#[test]
fn tui_sign_in_screen_on_the_first_account_starts_again_on_the_next() {
    let (t, log) = env(2);
    let mut cmd = t.cmd("hs-run");
    cmd.args(["-m", "o3"]).env("FAKE_CODEX_SIGN_IN", "acct-acc1");
    let mut tui = Tui::spawn(cmd, 24, 100);
    tui.wait_until(|_| runs(&log).len() == 2, T).unwrap_or_else(|e| panic!("{e}"));
    tui.wait_for_text("› ready", T).unwrap();
    tui.send(b"q");
    assert_eq!(tui.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", tui.screen());
    let runs = runs(&log);
    // the same command line again, on acc2: there was no session to resume
    assert_eq!(args(&runs[0]), ["--no-daemon", "-m", "o3"]);
    assert_eq!(args(&runs[1]), args(&runs[0]));
    assert_eq!(runs[1]["account_id"], "acct-acc2");
    let acc1 = state_of(&t, "acc1");
    assert_eq!((acc1["state"].as_str(), acc1["reason"].as_str()), (Some("login_needed"), Some(shared::run::recover::SIGN_IN_TEXT)));
    let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
    assert!(raw.contains("codex-hotswap: acc1 cannot log in (codex shows its sign-in screen"), "{raw}");
    assert!(raw.contains("starting codex again on acc2"), "{raw}");
}

/// acc1 at its limit, acc2 refusing acc1's thread (`check`: codex's account check refuses it
/// before any turn). Returns the fake's runs and hs-run's stderr.
fn carried_exec(check: bool) -> (TestEnv, Vec<Value>, String, String) {
    let (t, log) = env(2);
    let r = limited_run(&t, &["--", "--enable", "cli_resume_account_check", "exec", "--skip-git-repo-check", "do it"], &[("FAKE_CODEX_REFUSE_FOREIGN", "acct-acc2"), ("FAKE_CODEX_ACCOUNT_CHECK", if check { "1" } else { "0" })]);
    let (out, err) = (String::from_utf8_lossy(&r.stdout).into_owned(), String::from_utf8_lossy(&r.stderr).into_owned());
    assert_eq!(r.status.code(), Some(0), "{err}");
    (t, runs(&log), out, err)
}

#[track_caller]
fn assert_carried_over(t: &TestEnv, runs: &[Value], out: &str, err: &str) {
    let old = runs[0]["session_id"].as_str().unwrap();
    let resumed = args(&runs[1]);
    assert_eq!(resumed, ["--enable", "cli_resume_account_check", "exec", "--skip-git-repo-check", "resume", old, DEFAULT_PROMPT]);
    // the new session: on acc2, the user's flags, the conversation as its prompt
    let fresh = args(&runs[2]);
    assert_eq!(runs[2]["account_id"], "acct-acc2");
    assert_eq!(fresh[..4], ["--enable", "cli_resume_account_check", "exec", "--skip-git-repo-check"]);
    let prompt = &fresh[4];
    assert_eq!(fresh.len(), 5, "{fresh:?}");
    assert!(prompt.contains(&format!("codex session {old}")), "{prompt}");
    assert!(prompt.contains("User:\ndo it\n"), "{prompt}");
    assert!(prompt.ends_with(DEFAULT_PROMPT), "{prompt}");
    let new = runs[2]["session_id"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(out.starts_with("fake answer to: [codex-hotswap] This conversation began in codex session"), "{out}");
    assert!(err.contains(&format!("codex-hotswap: acc2 refused to continue session {old} (")), "{err}");
    assert!(err.contains(&format!("codex-hotswap: session {old} was carried over as text into session {new} on acc2")), "{err}");
    let ev = events(t);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!((ev[1]["how"].as_str(), ev[1]["from"].as_str(), ev[1]["to"].as_str()), (Some("carried_over"), Some("acc1"), Some("acc2")));
    assert_eq!((ev[1]["session_id"].as_str(), ev[1]["new_session_id"].as_str()), (Some(old), Some(new)));
    // acc2 is fine: only the thread was refused
    assert_eq!(state_of(t, "acc2")["state"], "available");
}

#[test]
fn exec_resume_refused_by_the_backend_is_carried_over_as_text() {
    let (t, runs, out, err) = carried_exec(false);
    assert_eq!(runs.len(), 3);
    assert!(err.contains("invalid_encrypted_content"), "{err}");
    assert_carried_over(&t, &runs, &out, &err);
}

#[test]
fn exec_resume_refused_by_codex_account_check_is_carried_over_as_text() {
    let (t, runs, out, err) = carried_exec(true);
    assert_eq!(runs.len(), 3);
    assert!(err.contains("Error: thread/resume: thread/resume failed: This thread was created with a different ChatGPT account"), "{err}");
    assert_carried_over(&t, &runs, &out, &err);
}

#[test]
fn tui_resume_refused_is_carried_over_into_a_new_session() {
    let (t, log) = env(2);
    let mut cmd = t.cmd("hs-run");
    cmd.env("FAKE_CODEX_LIMIT", "1").env("FAKE_CODEX_REFUSE_FOREIGN", "acct-acc2");
    let mut tui = Tui::spawn(cmd, 24, 100);
    tui.wait_until(|_| runs(&log).len() == 3, T).unwrap_or_else(|e| panic!("{e}"));
    tui.wait_for_text("› ready", T).unwrap();
    // recorded while the new session runs (events.jsonl and the on_swap hook hear of it then)
    let carried = || events(&t).into_iter().filter(|e| e["how"] == "carried_over").collect::<Vec<_>>();
    assert!(crate::support::env::poll_until(T, || !carried().is_empty()), "no carried_over event while codex runs");
    assert!(tui.wait_exit(Duration::from_millis(1)).is_none(), "codex still runs");
    tui.send(b"q");
    assert_eq!(tui.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", tui.screen());
    let runs = runs(&log);
    let fresh = args(&runs[2]);
    assert_eq!(fresh[0], "--no-daemon");
    assert!(fresh[1].starts_with("[codex-hotswap] This conversation began"), "{fresh:?}");
    assert_eq!(runs[2]["account_id"], "acct-acc2");
    let c = carried();
    assert_eq!(c.len(), 1, "recorded once: {c:?}");
    assert_eq!(c[0]["session_id"], runs[0]["session_id"]);
    assert_eq!(c[0]["new_session_id"], runs[2]["session_id"]);
    assert_eq!(events(&t).last().unwrap()["how"], "carried_over");
}

// ---- the real codex 0.169.0 against the mock backend ----

mod real {
    use super::*;
    use crate::support::auth::FakeAccount;
    use crate::support::mock::Behaviour;
    use crate::support::real::RealWorld;

    const WAIT: Duration = Duration::from_secs(90);
    const READY: &str = "Ask Codex to do anything";

    /// acc1 at its limit, acc2 as `acc2` says, acc3 answering.
    fn world(acc2: Behaviour) -> RealWorld {
        let [a1, a2, a3] = ["acc1", "acc2", "acc3"].map(|n| FakeAccount::new(n, "plus"));
        let w = RealWorld::new(&[&a1, &a2, &a3]).with_hs_run();
        w.mock.set_behaviour("acct-acc1", Behaviour::usage_limit("plus", chrono::Utc::now().timestamp() + 3 * 3600));
        w.mock.set_behaviour("acct-acc2", acc2);
        w.mock.set_behaviour("acct-acc3", Behaviour::Answer("Hello from acc3".into()));
        w
    }

    fn hs_run(r: &RealWorld) -> std::process::Command {
        let mut c = r.env.cmd("hs-run");
        c.current_dir(&r.work);
        c
    }

    #[test]
    fn real_exec_moves_on_from_a_revoked_login() {
        let r = world(Behaviour::Revoked);
        let vault = r.vault_auth(&FakeAccount::new("acc2", "plus"));
        let before = std::fs::read(&vault).unwrap();
        let out = hs_run(&r).args(["--", "exec", "--skip-git-repo-check", "revoked question"]).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.contains("Hello from acc3"), "{stdout}");
        let turns = r.mock.turns();
        let seen: Vec<_> = turns.iter().map(|t| (t.account_id.clone().unwrap(), t.status)).collect();
        assert_eq!(seen.first(), Some(&("acct-acc1".to_string(), 429)), "{seen:?}");
        assert_eq!(seen.last(), Some(&("acct-acc3".to_string(), 200)), "{seen:?}");
        assert!(seen.iter().filter(|(a, _)| a == "acct-acc2").all(|(_, s)| *s == 401), "{seen:?}");
        assert!(turns.iter().all(|t| t.session_id == turns[0].session_id), "one session");
        // codex asked the refresh endpoint once or twice, not in a loop
        let refreshes = r.mock.requests().iter().filter(|q| q.is_refresh()).count();
        assert!((1..=4).contains(&refreshes), "{refreshes}");
        assert!(stderr.contains("codex-hotswap: acc2 cannot log in (Your access token could not be refreshed"), "{stderr}");
        let acc2 = r.env.run("hs-rotate", &["status", "--json"]).ok().json_lines().into_iter().find(|s| s["name"] == "acc2").unwrap();
        assert_eq!((acc2["state"].as_str(), acc2["fix"].as_str()), (Some("login_needed"), Some("codex-hotswap login acc2")));
        assert_eq!(std::fs::read(&vault).unwrap(), before, "the vault's login is kept as it was");
    }

    #[test]
    fn real_tui_moves_on_from_a_revoked_login() {
        let r = world(Behaviour::Revoked);
        let tui = Tui::spawn(hs_run(&r), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("tui revoked question");
        tui.wait_for_text("Hello from acc3", WAIT).unwrap_or_else(|e| panic!("{e}; log:\n{}", std::fs::read_to_string(r.hs_run_log()).unwrap_or_default()));
        let log = std::fs::read_to_string(r.hs_run_log()).unwrap_or_default();
        let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
        assert!(raw.contains("codex-hotswap: acc2 cannot log in ("), "{log}");
        let ev = events(&r.env);
        assert_eq!(ev.last().unwrap()["how"], "login_needed");
        let mut tui = tui;
        tui.kill();
    }

    /// Ctrl-C until hs-run ends (one at a time: one during codex's shutdown would cut it short).
    fn quit(tui: &mut Tui) {
        for _ in 0..5 {
            tui.send(b"\x03");
            if tui.wait_exit(Duration::from_secs(4)).is_some() {
                return;
            }
        }
        panic!("hs-run did not exit; screen:\n{}", tui.screen())
    }

    #[test]
    fn real_tui_login_revoked_mid_session_moves_on() {
        let r = world(Behaviour::Answer("Hello from acc2".into()));
        let mut cmd = hs_run(&r);
        cmd.args(["--account", "acc2"]);
        let tui = Tui::spawn(cmd, 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("first on acc2");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // the login dies while codex runs: its next turn is refused, the refresh too; codex
        // shows the error and stays open, hs-run stops it
        r.mock.set_behaviour("acct-acc2", Behaviour::Revoked);
        tui.submit("second question");
        tui.wait_for_text("Hello from acc3", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let turns = r.mock.turns();
        let last = turns.last().unwrap();
        assert_eq!(last.account_id.as_deref(), Some("acct-acc3"));
        assert_eq!(last.session_id, turns[0].session_id, "the same session");
        assert!(last.body.contains("second question"), "the thread carries the refused prompt");
        assert!(last.body.contains(super::LOGIN_PROMPT) && !last.body.contains("usage limit"), "the prompt says why: {}", last.body);
        let log = std::fs::read_to_string(r.hs_run_log()).unwrap_or_default();
        assert!(log.contains("trouble: DeadLogin"), "{log}");
        let mut tui = tui;
        quit(&mut tui);
        let ev = events(&r.env);
        assert_eq!((ev[0]["from"].as_str(), ev[0]["to"].as_str(), ev[0]["how"].as_str()), (Some("acc2"), Some("acc3"), Some("login_needed")));
    }

    #[test]
    fn real_tui_started_on_a_revoked_login_starts_again_on_the_next_account() {
        let r = world(Behaviour::Answer("Hello from acc2".into()));
        r.mock.set_behaviour("acct-acc1", Behaviour::Revoked);
        let tui = Tui::spawn(hs_run(&r), 30, 110);
        // (codex on acc1 may draw its composer before it fails: what is typed there is lost with it)
        r.mock
            .wait_for(|q| q.kind == "accounts_check" && q.account_id.as_deref() == Some("acct-acc2"), WAIT)
            .expect("codex started again on acc2");
        std::thread::sleep(std::time::Duration::from_millis(500));
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("fresh question");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
        assert!(raw.contains("codex-hotswap: acc1 cannot log in ("), "{raw}");
        assert!(raw.contains("fix: codex-hotswap login acc1); starting codex again on acc2"), "{raw}");
        let turns = r.mock.turns();
        assert!(turns.iter().all(|t| t.account_id.as_deref() == Some("acct-acc2")), "{}", r.requests_summary());
        let mut tui = tui;
        quit(&mut tui);
        let ev = events(&r.env);
        assert_eq!((ev[0]["from"].as_str(), ev[0]["to"].as_str(), ev[0]["how"].as_str()), (Some("acc1"), Some("acc2"), Some("login_needed")));
    }

    #[test]
    fn real_tui_carries_a_thread_the_backend_refuses_over_as_text() {
        let r = world(Behaviour::RejectForeignThreads);
        let tui = Tui::spawn(hs_run(&r), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("tui encrypted question");
        r.mock
            .wait_for(|q| q.is_turn() && q.status == 200 && q.account_id.as_deref() == Some("acct-acc2"), WAIT)
            .unwrap_or_else(|| panic!("no carried-over turn; screen:\n{}", tui.screen()));
        // recorded while the new session still runs
        let recorded = crate::support::env::poll_until(WAIT, || events(&r.env).iter().any(|e| e["how"] == "carried_over"));
        assert!(recorded, "no carried_over event while codex runs");
        let mut tui = tui;
        assert!(tui.wait_exit(Duration::from_millis(1)).is_none(), "codex still runs");
        quit(&mut tui);
        assert_carried(&r, "tui encrypted question");
        assert_eq!(events(&r.env).iter().filter(|e| e["how"] == "carried_over").count(), 1, "recorded once");
    }

    /// The new session on acc2: its first turn carries the old conversation as text.
    #[track_caller]
    fn assert_carried(r: &RealWorld, first_prompt: &str) {
        let first = r.mock.wait_for(|q| q.is_turn() && q.body.contains(first_prompt), WAIT).unwrap();
        let carried = r
            .mock
            .wait_for(|q| q.is_turn() && q.status == 200 && q.account_id.as_deref() == Some("acct-acc2"), WAIT)
            .unwrap_or_else(|| panic!("no carried-over turn on acc2:\n{}", r.requests_summary()));
        assert_ne!(carried.session_id, first.session_id, "a new session");
        assert!(carried.body.contains("This conversation began in codex session"), "{}", carried.body);
        assert!(carried.body.contains(first_prompt), "the old conversation is in it");
        let old = first.session_id.clone().unwrap();
        let ev = events(&r.env);
        let c = ev.iter().find(|e| e["how"] == "carried_over").unwrap_or_else(|| panic!("{ev:?}"));
        assert_eq!(c["session_id"].as_str(), Some(old.as_str()));
        assert_eq!(c["new_session_id"].as_str(), carried.session_id.as_deref());
        assert!(r.mock.requests().iter().all(|q| q.account_id.as_deref() != Some("acct-acc3")), "acc3 not used");
    }

    #[test]
    fn real_exec_carries_a_thread_the_backend_refuses_over_as_text() {
        let r = world(Behaviour::RejectForeignThreads);
        let out = hs_run(&r).args(["--", "exec", "--skip-git-repo-check", "encrypted question"]).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains("invalid_encrypted_content"), "{stderr}");
        let refused = r.mock.turns().into_iter().find(|t| t.status == 400).expect("acc2 refused the old thread");
        assert_eq!(refused.account_id.as_deref(), Some("acct-acc2"));
        assert_carried(&r, "encrypted question");
        assert!(stdout.contains("mock answer"), "{stdout}");
    }

    #[test]
    fn real_tui_with_the_account_check_carries_the_session_over() {
        let r = world(Behaviour::Answer("Hello from acc2".into()));
        let mut cmd = hs_run(&r);
        cmd.args(["--", "--enable", "cli_resume_account_check"]);
        let tui = Tui::spawn(cmd, 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("checked question");
        tui.wait_for_text("Hello from acc2", WAIT).unwrap_or_else(|e| panic!("{e}; log:\n{}", std::fs::read_to_string(r.hs_run_log()).unwrap_or_default()));
        let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
        assert!(raw.contains("This thread was created with a different ChatGPT account or workspace"), "codex refused the resume");
        // the carried-over switch is logged when that codex ends, with both session ids
        let mut tui = tui;
        quit(&mut tui);
        assert_carried(&r, "checked question");
        let raw = String::from_utf8_lossy(&tui.raw()).into_owned();
        assert!(raw.contains("was carried over as text into session "), "{raw}");
    }
}
