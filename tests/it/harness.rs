//! End-to-end: the real codex (pinned, installed by `shell/test`) against the mock backend, in a
//! sealed environment. These prove the harness itself and the codex facts the tools rely on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::auth::{leaked_markers, read_tokens, FakeAccount, Tokens};
use crate::support::env::{Run, TestEnv};
use crate::support::mock::{Behaviour, RequestRecord};
use crate::support::real::RealWorld;
use crate::support::tui::{put_real_codex_on_path, real_codex_command, Tui};

/// Generous: the real codex starts in about a second, but CI machines are busy.
const WAIT: Duration = Duration::from_secs(60);
/// The composer placeholder: the TUI is ready for a prompt.
const READY: &str = "Ask Codex to do anything";
const LIMIT_PLUS: &str = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at";

/// A CODEX_HOME of its own under the test's root, logged in as `acct`, trusting the work folder.
fn codex_home(s: &RealWorld, acct: &FakeAccount) -> PathBuf {
    let dir = s.env.root().join(format!("codex-{}", acct.account_id));
    s.mock.codex_home(&dir, acct, &[&s.work])
}

fn tokens_in(home: &Path) -> Tokens {
    let text = std::fs::read_to_string(home.join("auth.json")).expect("read auth.json");
    read_tokens(&text).expect("auth.json holds ChatGPT tokens")
}

/// The text of every rollout file under `<home>/sessions`.
fn rollouts(home: &Path) -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&home.join("sessions"), &mut out);
    out
}

/// Saves the TUI's raw output as `<CODEX_HOTSWAP_CAPTURE_DIR>/<name>.raw` when that is set,
/// after checking that it holds no token (captures become committed fixtures).
#[track_caller]
fn maybe_capture(tui: &Tui, name: &str) {
    let leaks = leaked_markers(&tui.raw());
    assert!(leaks.is_empty(), "the {name} output shows tokens: {leaks:?}");
    if let Some(dir) = std::env::var_os("CODEX_HOTSWAP_CAPTURE_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        tui.save_raw(&dir.join(format!("{name}.raw"))).unwrap();
    }
}

/// Submits `prompt` and waits for the turn carrying it to reach the mock.
#[track_caller]
fn submit_turn(s: &RealWorld, tui: &Tui, prompt: &str) -> RequestRecord {
    tui.expect_text(READY, WAIT);
    tui.submit(prompt);
    s.mock
        .wait_for(|r| r.is_turn() && r.body.contains(prompt), WAIT)
        .unwrap_or_else(|| panic!("no turn with {prompt:?} reached the mock; screen:\n{}", tui.screen()))
}

#[test]
fn tui_answers_on_one_account_then_shows_the_usage_limit_on_another() {
    let s = RealWorld::new(&[]);
    let one = FakeAccount::new("one", "plus");
    let two = FakeAccount::new("two", "plus");
    let (home1, home2) = (codex_home(&s, &one), codex_home(&s, &two));
    s.mock.set_behaviour(&one.account_id, Behaviour::Answer("Hello from account one".into()));
    let resets_at = chrono::Utc::now().timestamp() + 3 * 3600;
    s.mock.set_behaviour(&two.account_id, Behaviour::usage_limit("plus", resets_at));

    let mut tui = s.tui(&home1);
    let turn = submit_turn(&s, &tui, "first question");
    tui.expect_text("Hello from account one", WAIT);
    assert_eq!(turn.account_id.as_deref(), Some("acct-one"));
    assert_eq!(turn.bearer, Some(tokens_in(&home1).access_token), "account one's access token");
    assert_eq!(turn.status, 200);
    assert!(turn.session_id.is_some() && turn.thread_id.is_some(), "{turn:?}");
    assert!(!tui.screen_has("usage limit"), "{}", tui.screen());
    // `/quit` ends the TUI cleanly; it then prints how to resume the session it served.
    tui.submit("/quit");
    let status = tui.wait_exit(WAIT);
    let status = status.unwrap_or_else(|| panic!("codex did not quit:\n{}", tui.screen()));
    assert!(status.success(), "{status:?}");
    let session = turn.session_id.clone().unwrap();
    tui.expect_text(&format!("To continue this session, run: codex resume {session}"), WAIT);
    maybe_capture(&tui, "tui-answer");
    drop(tui);

    let tui = s.tui(&home2);
    let turn = submit_turn(&s, &tui, "second question");
    tui.expect_text(LIMIT_PLUS, WAIT);
    tui.expect_text("■ You’ve hit your usage limit", WAIT);
    assert_eq!(turn.account_id.as_deref(), Some("acct-two"));
    assert_eq!(turn.bearer, Some(tokens_in(&home2).access_token), "account two's access token");
    assert_eq!(turn.status, 429);
    assert!(!tui.screen_has("Hello from account one"), "a new session shows no old answer");
    maybe_capture(&tui, "tui-usage-limit-plus");

    // Every turn went to the account of the CODEX_HOME it came from.
    for r in s.mock.requests().iter().filter(|r| r.is_turn() || r.is_title()) {
        let home = if r.account_id.as_deref() == Some("acct-one") { &home1 } else { &home2 };
        assert_eq!(r.bearer, Some(tokens_in(home).access_token), "{r:?}");
    }
}

#[test]
fn exec_answers_and_reports_the_usage_limit() {
    let s = RealWorld::new(&[]);
    let one = FakeAccount::new("one", "pro");
    let two = FakeAccount::new("two", "free");
    let (home1, home2) = (codex_home(&s, &one), codex_home(&s, &two));
    s.mock.set_behaviour(&two.account_id, Behaviour::usage_limit("free", chrono::Utc::now().timestamp() + 600));

    let ok = s.exec(&home1, &["exec question"]).ok();
    assert!(ok.stdout.contains("mock answer 1"), "{ok:?}");
    let limited = s.exec(&home2, &["exec question two"]).code(1);
    assert!(
        limited.stderr.contains("ERROR: You’ve hit your usage limit. Upgrade to Plus to continue using Codex"),
        "{limited:?}"
    );
    let turns = s.mock.turns();
    let accounts: Vec<_> = turns.iter().map(|r| (r.account_id.as_deref().unwrap_or("-"), r.status)).collect();
    assert_eq!(accounts, [("acct-one", 200), ("acct-two", 429)]);

    // The x-codex-* headers became rate-limit telemetry in each session's rollout, and the limit a
    // structured record.
    let (r1, r2) = (rollouts(&home1), rollouts(&home2));
    assert!(r1.contains(r#""primary":{"used_percent":42.5,"window_minutes":300"#), "{r1}");
    assert!(r2.contains(r#""primary":{"used_percent":100.0,"window_minutes":300"#), "{r2}");
    assert!(r2.contains(r#""codex_error_info":"usage_limit_exceeded""#), "{r2}");
    assert!(!r1.contains("usage_limit_exceeded"), "{r1}");
}

#[test]
fn exec_refreshes_an_expiring_access_token_and_writes_the_new_tokens_back() {
    let s = RealWorld::new(&[]);
    let acct = FakeAccount::new("soon", "plus").expiring_in(60);
    let home = codex_home(&s, &acct);
    let before = tokens_in(&home);
    let stale_copy = std::fs::read_to_string(home.join("auth.json")).unwrap();

    let ok = s.exec(&home, &["refresh please"]).ok();
    assert!(ok.stdout.contains("mock answer"), "{ok:?}");
    let refreshes: Vec<_> = s.mock.requests().into_iter().filter(RequestRecord::is_refresh).collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0].json()["refresh_token"], before.refresh_token.as_str());
    assert_eq!(refreshes[0].status, 200);
    let after = tokens_in(&home);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_eq!(Some(after.refresh_token.clone()), s.mock.current_refresh_token("acct-soon"));
    let turn = s.mock.turns().pop().expect("a turn");
    assert_eq!(turn.bearer, Some(after.access_token), "the turn used the refreshed access token");

    // A stale copy of auth.json holds a consumed refresh token: the mock refuses it like the real one.
    std::fs::write(home.join("auth.json"), stale_copy).unwrap();
    let from = s.mock.requests().len();
    let failed = s.exec(&home, &["with a stale copy"]);
    let reused = s
        .mock
        .wait_for_from(from, RequestRecord::is_refresh, Duration::ZERO)
        .expect("codex tried to refresh the stale token");
    assert_eq!(reused.status, 401);
    assert_eq!(reused.json()["refresh_token"], before.refresh_token.as_str());
    // Codex says so on stderr and goes on with the cached access token while it is still valid.
    assert!(failed.stderr.contains("refresh token was already used"), "{failed:?}");
}

#[test]
fn mock_backend_bin_serves_codex_until_stdin_closes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let env = TestEnv::new();
    let (dir, home, work) = (env.root().join("mock"), env.root().join("codex-solo"), env.root().join("work"));
    std::fs::create_dir_all(&work).unwrap();
    let mut server = env
        .cmd("mock-backend")
        .arg("--dir")
        .arg(&dir)
        .arg("--login")
        .arg(format!("{}=solo:pro", home.display()))
        .args(["--account", "acct-solo=answer:Answer from the binary"])
        .current_dir(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mock-backend");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(info["type"], "mock_backend");
    assert!(std::fs::read_to_string(info["ca_path"].as_str().unwrap())
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains(info["base_url"].as_str().unwrap()), "{config}");

    let mut cmd = real_codex_command(&env, &home, &work);
    for (k, v) in info["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let run = Run::from(cmd.args(["exec", "--skip-git-repo-check", "hello binary"]).output().unwrap()).ok();
    assert!(run.stdout.contains("Answer from the binary"), "{run:?}");
    let log = std::fs::read_to_string(info["log"].as_str().unwrap()).unwrap();
    let turn = log
        .lines()
        .map(|l| serde_json::from_str::<RequestRecord>(l).unwrap())
        .find(RequestRecord::is_turn)
        .expect("a turn in the log");
    assert_eq!((turn.account_id.as_deref(), turn.status), (Some("acct-solo"), 200));

    drop(server.stdin.take());
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = server.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "mock-backend still runs after stdin closed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_real_codex_can_be_put_on_the_sealed_path() {
    let mut env = TestEnv::new();
    let link = put_real_codex_on_path(&mut env);
    let run = env.run("/bin/sh", &["-c", "command -v codex && codex --version"]).ok();
    let version = crate::support::mock::real_codex_version();
    assert_eq!(run.stdout, format!("{}\ncodex-cli {version}\n", link.display()));
}
